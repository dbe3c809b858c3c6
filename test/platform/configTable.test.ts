import { readFileSync } from "node:fs"
import * as path from "node:path"
import { Config, ConfigError, ConfigProvider, ConfigProviderPathPatch, Effect, Either, HashSet, Option } from "effect"
import { describe, expect, it } from "vitest"
import { appConfigFrom, loadAppConfig } from "../../src/layers/platform/AppConfigLive.js"
import { docsOf, section } from "../../src/layers/platform/config/section.js"
import { sections } from "../../src/layers/platform/config/sections.js"
import { renderEnvExample } from "../../src/layers/platform/config/envExample.js"
import { CONFIG_END, CONFIG_START, renderConfigTable, tableIn, withTable } from "../../src/layers/platform/config/table.js"
import { secretWithDefault, text } from "../../src/layers/platform/config/variable.js"
import { policyNames, rateLimitPolicies } from "../../src/services/platform/rateLimitPolicies.js"

const readme = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8")
const docs = Object.values(sections).flatMap(docsOf)
const generated = renderConfigTable()

/** A provider with no variables that writes down every name the configuration asks for. */
const recordingProvider = (asked: Set<string>) =>
  ConfigProvider.fromFlat(ConfigProvider.makeFlat({
    load: <A>(p: ReadonlyArray<string>, _primitive: Config.Config.Primitive<A>) => {
      asked.add(p.join("."))
      return Effect.fail(ConfigError.MissingData([...p], "unset"))
    },
    enumerateChildren: () => Effect.succeed(HashSet.empty<string>()),
    patch: ConfigProviderPathPatch.empty
  }))

describe("the README's configuration table", () => {
  it("is the one generated from the section files (run `npm run docs:config` when this fails)", () => {
    const inReadme = Either.getOrThrow(tableIn(readme))
    expect(inReadme.split("\n"), "README.md's configuration table is stale: run `npm run docs:config`").toEqual(generated.split("\n"))
  })

  it(".env.example is the one generated from the same section files (run `npm run docs:config` when this fails)", () => {
    const example = readFileSync(path.resolve(import.meta.dirname, "../../.env.example"), "utf8")
    expect(example.split("\n"), ".env.example is stale: run `npm run docs:config`").toEqual(renderEnvExample().split("\n"))
    for (const doc of docs) expect(example).toMatch(new RegExp(doc.secret ? `^# ${doc.name}=$` : `^(# )?${doc.name}=`, "m"))
  })

  it("lists exactly the variables the app reads", () => {
    const asked = new Set<string>()
    Effect.runSync(Effect.either(loadAppConfig.pipe(Effect.withConfigProvider(recordingProvider(asked)))))
    expect([...asked].sort()).toEqual(docs.map((d) => d.name).sort())
    for (const name of asked) expect(generated).toContain(`| \`${name}\``)
  })

  it("shows each default that the app really uses: setting every variable to its documented default changes nothing", () => {
    const documented = Object.fromEntries(docs.flatMap((d) => Option.toArray(Option.map(d.default, (value) => [d.name, value] as const))))
    expect(Object.keys(documented).length).toBeGreaterThan(40)
    const unset = Either.getOrThrow(Effect.runSync(Effect.either(appConfigFrom({}))))
    const set = Either.getOrThrow(Effect.runSync(Effect.either(appConfigFrom(documented))))
    const comparable = (c: typeof unset) => ({ ...c, auth: { ...c.auth, jwtSecret: null }, secretValues: null, cors: c.cors.origins })
    expect(comparable(set)).toEqual(comparable(unset))
    expect(set.cors.policy).toEqual(unset.cors.policy)
  })

  it("marks every secret and never shows a secret's value, not even a built-in one", () => {
    const secrets = docs.filter((d) => d.secret).map((d) => d.name)
    expect(secrets.sort()).toEqual(["ADMIN_TOKEN", "DATABASE_URL", "DUITKU_API_KEY", "DUITKU_MERCHANT_CODE", "HF_TOKEN", "JWT_SECRET", "METRICS_TOKEN", "REDIS_PASSWORD"])
    for (const name of secrets) expect(generated).toMatch(new RegExp(`^\\| \`${name}\` \\(secret\\) \\|`, "m"))
    expect(generated).not.toContain("postgres://postgres@127.0.0.1:5432/lumiku")

    const hidden = "a-built-in-value-0123"
    const table = renderConfigTable([section("Example", {
      shown: text({ name: "SHOWN", default: "visible-default", description: "plain" }),
      key: secretWithDefault({ name: "KEY", default: hidden, whenUnset: "a development key", accepts: "text", description: "secret" })
    }, (v) => v)])
    expect(table).toContain("| `SHOWN` | `visible-default` |")
    expect(table).toContain("| `KEY` (secret) | a development key |")
    expect(table).not.toContain(hidden)
  })

  it("has one rate-limit variable per policy, with the policy's default", () => {
    for (const name of policyNames) {
      const policy = rateLimitPolicies[name]
      const variable = name === "health"
        ? "HEALTH_RATE_LIMIT_PER_MINUTE"
        : `RATE_LIMIT_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
      const doc = docs.find((d) => d.name === variable)
      expect(doc, variable).toBeDefined()
      expect(Option.getOrThrow(doc!.default)).toBe(name === "health" ? String(policy.limit) : `${policy.limit} per ${policy.window}`)
    }
  })

  it("escapes what would break a Markdown table", () => {
    const table = renderConfigTable([section("Example", {
      v: text({ name: "V", default: "a|b", description: "<n> per <duration> | or not" })
    }, (v) => v)])
    expect(table).toContain("| `V` | `a\\|b` | text | \\<n\\> per \\<duration\\> \\| or not |")
  })

  it("rewrites only the text between the markers, and refuses a README without them", () => {
    const before = `# Title\n\nintro\n${CONFIG_START}\nold table\n${CONFIG_END}\n\n## Next\n`
    expect(Either.getOrThrow(withTable(before, "new table"))).toBe(`# Title\n\nintro\n${CONFIG_START}\nnew table\n${CONFIG_END}\n\n## Next\n`)
    expect(Either.getLeft(withTable("# Title\n", "new table"))).toEqual(Option.some(expect.stringContaining(CONFIG_START)))
    expect(Either.isLeft(withTable(`${CONFIG_END}\n${CONFIG_START}\n`, "x"))).toBe(true)
  })
})
