import { Option } from "effect"
import { docsOf, type SectionVariables } from "./section.js"
import { sections } from "./sections.js"
import type { VariableDoc } from "./variable.js"

const HEADER = [
  "# Lumiku backend configuration, generated from src/layers/platform/config/ by `npm run docs:config`",
  "# (edit the section files, not this file). Every variable is optional in development: the defaults",
  "# work on a machine with Postgres on 127.0.0.1:5432 (user postgres, trust auth) and Redis on",
  "# 127.0.0.1:6379. In production (NODE_ENV=production) a bad configuration exits with code 1 before",
  "# listening, listing every problem at once. Secrets have no value here, not even a development one."
]

const comment = (doc: VariableDoc) => {
  const unset = Option.match(doc.whenUnset, { onNone: () => "", onSome: (text) => ` Unset: ${text}` })
  const description = doc.description.charAt(0).toUpperCase() + doc.description.slice(1)
  return `# ${description} (${doc.accepts}${doc.secret ? "; secret" : ""}).${unset}`
}

/**
 * A variable with a default carries it, so loading the file as it is changes nothing; a secret or a
 * variable without a default is commented out (set empty, it would be a value, and a wrong one).
 */
const assignment = (doc: VariableDoc) =>
  !doc.secret && Option.isSome(doc.default) ? `${doc.name}=${doc.default.value}` : `# ${doc.name}=`

const sectionBlock = (section: SectionVariables) =>
  [`# --- ${section.title} ---`, ...docsOf(section).flatMap((doc) => [comment(doc), assignment(doc)])].join("\n")

/** `.env.example`: every variable the app reads, with its default and what it does, by section. */
export const renderEnvExample = (all: ReadonlyArray<SectionVariables> = Object.values(sections)): string =>
  [HEADER.join("\n"), ...all.map(sectionBlock)].join("\n\n") + "\n"
