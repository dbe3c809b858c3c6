import { readFileSync } from "node:fs"
import * as path from "node:path"
import { DockerfileParser } from "dockerfile-ast"
import { Duration, Effect } from "effect"
import { describe, expect, it } from "vitest"
import { parse, parseAllDocuments } from "yaml"
import { Api } from "../../src/http/Api.js"
import { makeRouteTemplates } from "../../src/http/platform/routeTemplates.js"
import { appConfigFrom } from "../../src/layers/platform/AppConfigLive.js"
import { docsOf } from "../../src/layers/platform/config/section.js"
import { sections } from "../../src/layers/platform/config/sections.js"
import { productionEnv } from "../support/env.js"

// Manifests are read as data (a YAML parser); their fields are checked one by one, hence `any` here.
type Manifest = Record<string, any>

const root = path.resolve(import.meta.dirname, "../..")
const read = (file: string) => readFileSync(path.join(root, file), "utf8")
const manifests = (file: string): Array<Manifest> => parseAllDocuments(read(file)).map((d) => d.toJS() as Manifest).filter((d) => d != null)
const k8s = ["api", "worker", "configmap", "secret.template", "storage"].flatMap((f) => manifests(`deploy/k8s/${f}.yaml`))
const ofKind = (kind: string) => k8s.filter((m) => m["kind"] === kind)
const deployment = (name: string) => ofKind("Deployment").find((d) => d["metadata"]["name"] === name)!
const configMap = ofKind("ConfigMap")[0]!
const secret = ofKind("Secret")[0]!

/** Every secret variable the app reads (the config sections mark them). */
const secretNames = Object.values(sections).flatMap((s) => docsOf(s)).filter((d) => d.secret).map((d) => d.name)
const routes = makeRouteTemplates(Api)

/** The configuration a pod of `deploymentName` reads: the ConfigMap, the Secret (filled), its own env. */
const podConfig = (deploymentName: string) => {
  const container = deployment(deploymentName)["spec"]["template"]["spec"]["containers"][0]
  const own = Object.fromEntries((container["env"] as Array<Manifest>).filter((e) => "value" in e).map((e) => [e["name"], String(e["value"])]))
  const filled = Object.fromEntries(Object.keys(secret["stringData"]).map((k) => [k, productionEnv[k] ?? "postgres://lumiku:pw-Xk29qLm@db:5432/lumiku"]))
  return Effect.runPromise(appConfigFrom({ ...configMap["data"], ...filled, ...own }))
}

describe("Kubernetes manifests (deploy/k8s)", () => {
  it("the api and worker Deployments run ROLE=api and ROLE=worker, and the ConfigMap passes the production rules", async () => {
    expect((await podConfig("lumiku-api")).role).toBe("api")
    expect((await podConfig("lumiku-worker")).role).toBe("worker")
  })

  for (const name of ["lumiku-api", "lumiku-worker"]) {
    it(`${name}: probes hit the server's probe routes on PORT, with the issue's timings`, async () => {
      const config = await podConfig(name)
      const container = deployment(name)["spec"]["template"]["spec"]["containers"][0]
      const portOf = (ref: string | number) =>
        typeof ref === "number" ? ref : (container["ports"] as Array<Manifest>).find((p) => p["name"] === ref)!["containerPort"]
      const { livenessProbe: live, readinessProbe: ready, startupProbe: startup } = container
      expect(live.httpGet.path).toBe("/health/liveness")
      expect(ready.httpGet.path).toBe("/health/readiness")
      expect(startup.httpGet.path).toBe("/health/liveness")
      for (const probe of [live, ready, startup]) {
        expect(portOf(probe.httpGet.port)).toBe(config.http.port)
        expect(routes("GET", probe.httpGet.path)).toBe(probe.httpGet.path) // a route the server declares
      }
      expect([live.periodSeconds, live.failureThreshold]).toEqual([10, 3])
      expect(ready.periodSeconds).toBe(5)
      // The startup probe gives a slow start (migrations) at least a minute before liveness takes over.
      expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(60)
    })

    it(`${name}: the grace period covers the drain delay plus the shutdown cap plus a margin`, async () => {
      const config = await podConfig(name)
      const spec = deployment(name)["spec"]["template"]["spec"]
      const budget = Duration.toSeconds(config.shutdown.drainDelay) + Duration.toSeconds(config.shutdown.timeout)
      expect(spec["terminationGracePeriodSeconds"]).toBeGreaterThanOrEqual(budget + 5)
      // A preStop sleep only when the app's own drain delay is 0.
      const preStop = spec["containers"][0]["lifecycle"]?.["preStop"]
      expect(preStop === undefined || Duration.toMillis(config.shutdown.drainDelay) === 0).toBe(true)
    })

    it(`${name}: resources are set and the memory limit reaches the health report`, async () => {
      const container = deployment(name)["spec"]["template"]["spec"]["containers"][0]
      for (const kind of ["requests", "limits"]) {
        expect(container.resources[kind].cpu).toBeDefined()
        expect(container.resources[kind].memory).toBeDefined()
      }
      const memory = (container["env"] as Array<Manifest>).find((e) => e["name"] === "MEMORY_LIMIT_BYTES")!
      expect(memory["valueFrom"]["resourceFieldRef"]).toEqual({ containerName: container.name, resource: "limits.memory" })
      expect(deployment(name)["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]).toBe(true)
    })
  }

  it("no secret value is inlined: the Secret is a template, and secrets reach pods only by reference", () => {
    expect(secretNames).toEqual(expect.arrayContaining(["JWT_SECRET", "REDIS_PASSWORD", "DATABASE_URL", "METRICS_TOKEN"]))
    for (const value of Object.values(secret["stringData"])) expect(value).toBe("")
    for (const name of secretNames) expect(configMap["data"][name]).toBeUndefined()
    for (const d of ofKind("Deployment")) {
      const container = d["spec"]["template"]["spec"]["containers"][0]
      for (const env of container["env"] as Array<Manifest>) expect(secretNames.includes(env["name"]) && "value" in env).toBe(false)
      expect(container["envFrom"]).toContainEqual({ secretRef: { name: secret["metadata"]["name"] } })
    }
  })

  it("the Service exposes the API port only; /metrics has its own port; HPAs and PDBs select what exists", () => {
    const service = ofKind("Service")[0]!
    expect(service["spec"]["ports"].map((p: Manifest) => p["targetPort"])).toEqual(["http"])
    const api = deployment("lumiku-api")["spec"]["template"]
    expect(api["spec"]["containers"][0]["ports"]).toContainEqual({ name: "metrics", containerPort: Number(configMap["data"]["METRICS_PORT"]) })
    expect(service["spec"]["selector"]).toEqual(api["metadata"]["labels"])
    const hpas = ofKind("HorizontalPodAutoscaler")
    const apiHpa = hpas.find((h) => h["spec"]["scaleTargetRef"]["name"] === "lumiku-api")!
    expect(apiHpa["spec"]["metrics"][0]["resource"]["name"]).toBe("cpu")
    expect(hpas.map((h) => h["spec"]["scaleTargetRef"]["name"]).sort()).toEqual(["lumiku-api", "lumiku-worker"])
    const pdbs = ofKind("PodDisruptionBudget")
    for (const name of ["lumiku-api", "lumiku-worker"]) {
      const labels = deployment(name)["spec"]["template"]["metadata"]["labels"]
      expect(pdbs.some((p) => JSON.stringify(p["spec"]["selector"]["matchLabels"]) === JSON.stringify(labels))).toBe(true)
    }
  })
})

describe("Dockerfile", () => {
  const dockerfile = DockerfileParser.parse(read("Dockerfile"))
  const froms = dockerfile.getFROMs()
  const instructions = dockerfile.getInstructions()
  const runtimeStart = froms[froms.length - 1]!.getRange().start.line
  const runtime = instructions.filter((i) => i.getRange().start.line >= runtimeStart)
  const argsOf = (keyword: string, list = runtime) => list.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? "")
  const baseImage = (read("Dockerfile").match(/^ARG NODE_IMAGE=(\S+)$/m) ?? [])[1]

  it("is multi-stage on a Node 24 slim base, compiles with npm run build and runs production dependencies only", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2)
    expect(baseImage).toMatch(/^node:24[.\w-]*-slim$/)
    expect(argsOf("RUN", instructions).some((r) => r.includes("npm run build"))).toBe(true)
    expect(argsOf("RUN", instructions).some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true)
    const pkg = JSON.parse(read("package.json"))
    expect(pkg.scripts.build).toContain("tsconfig.build.json")
    expect(JSON.parse(read("tsconfig.build.json")).compilerOptions.outDir).toBe("dist")
    // tsx and TypeScript are development tools: not in the production dependencies the image installs.
    for (const tool of ["tsx", "typescript", "esbuild"]) expect(pkg.dependencies[tool]).toBeUndefined()
    expect(argsOf("RUN").some((r) => /apt-get install[^&]*\bffmpeg\b/.test(r))).toBe(true)
  })

  it("runs the compiled JavaScript as a non-root user, with a signal-aware PID 1 and a liveness HEALTHCHECK", () => {
    const user = argsOf("USER").at(-1)
    expect(user).toBeDefined()
    expect(["root", "0"]).not.toContain(user)
    const entrypoint = JSON.parse(argsOf("ENTRYPOINT").at(-1) ?? "[]") as Array<string>
    const cmd = JSON.parse(argsOf("CMD").at(-1) ?? "[]") as Array<string>
    const command = [...entrypoint, ...cmd]
    // tini forwards signals to node; never npm (which swallows SIGTERM) nor a shell in between.
    expect(command[0] === "node" || /tini$/.test(command[0] ?? "")).toBe(true)
    expect(command).toContain("node")
    expect(command.some((a) => a === "npm" || a === "sh" || a.includes("tsx"))).toBe(false)
    expect(command).toContain("dist/src/main.js")
    expect(argsOf("RUN").some((r) => /apt-get install[^&]*\btini\b/.test(r)) || command[0] === "node").toBe(true)
    expect(argsOf("HEALTHCHECK").at(-1)).toContain("/health/liveness")
  })
})

describe("docker-compose.yml", () => {
  // Compose resolves YAML merge keys (<<: *app), as YAML 1.1 does.
  const compose = parse(read("docker-compose.yml"), { merge: true }) as Manifest
  const services = compose["services"]

  it("runs Postgres, Redis with noeviction and a password, and the api and worker roles over one storage volume", () => {
    const redis = (services["redis"]["command"] as Array<string>).join(" ")
    expect(redis).toContain("--maxmemory-policy noeviction")
    expect(redis).toMatch(/--requirepass \$\{REDIS_PASSWORD/)
    expect(services["api"]["environment"]["ROLE"]).toBe("api")
    expect(services["worker"]["environment"]["ROLE"]).toBe("worker")
    for (const name of ["api", "worker"]) {
      const env = services[name]["environment"]
      expect(services[name]["volumes"]).toContain(`storage:${env["STORAGE_DIR"]}`)
      expect(env["REDIS_PASSWORD"]).toMatch(/^\$\{REDIS_PASSWORD/)
    }
    expect(Object.keys(compose["volumes"])).toContain("storage")
  })

  it("starts in health-gated order and inlines no secret value", () => {
    for (const name of ["postgres", "redis"]) expect(services[name]["healthcheck"]).toBeDefined()
    for (const name of ["api", "worker"]) {
      expect(services[name]["depends_on"]["postgres"]["condition"]).toBe("service_healthy")
      expect(services[name]["depends_on"]["redis"]["condition"]).toBe("service_healthy")
      const env = services[name]["environment"] as Record<string, string>
      for (const secretName of secretNames) {
        if (env[secretName] === undefined) continue
        // Only interpolations (${VAR...}) from the environment or .env: the whole value, or a URL's password.
        const marked = env[secretName].replace(/\$\{[^}]+\}/g, "INTERPOLATED")
        if (marked.includes("://")) expect(new URL(marked).password).toBe("INTERPOLATED")
        else expect(marked).toBe("INTERPOLATED")
      }
    }
    expect(services["postgres"]["environment"]["POSTGRES_PASSWORD"]).toMatch(/^\$\{POSTGRES_PASSWORD/)
  })
})
