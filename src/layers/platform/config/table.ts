import { Either, Option } from "effect"
import { docsOf, type SectionVariables } from "./section.js"
import { sections } from "./sections.js"
import type { VariableDoc } from "./variable.js"

export const CONFIG_START = "<!-- config:start -->"
export const CONFIG_END = "<!-- config:end -->"

/** Markdown-safe table cell text: `|` would end the cell and `<n>` would read as an HTML tag. */
const cell = (text: string) => text.replace(/[|<>]/g, (c) => `\\${c}`).replaceAll("\n", " ")

/** A secret's value never appears, even when it has a built-in one (DATABASE_URL): only what happens when unset. */
const defaultCell = (doc: VariableDoc): string => {
  if (!doc.secret && Option.isSome(doc.default)) return doc.default.value === "" ? "(empty)" : `\`${cell(doc.default.value)}\``
  return Option.match(doc.whenUnset, { onNone: () => "", onSome: cell })
}

const row = (doc: VariableDoc) =>
  `| \`${doc.name}\`${doc.secret ? " (secret)" : ""} | ${defaultCell(doc)} | ${cell(doc.accepts)} | ${cell(doc.description)} |`

const sectionTable = (section: SectionVariables): string =>
  [
    `**${section.title}**`,
    "",
    "| variable | default | accepts | description |",
    "|---|---|---|---|",
    ...docsOf(section).map(row)
  ].join("\n")

/** The README's configuration tables, one per section, in reading order. */
export const renderConfigTable = (all: ReadonlyArray<SectionVariables> = Object.values(sections)): string =>
  [
    "<!-- generated from src/layers/platform/config/ by `npm run docs:config`; edit the section files, not this table -->",
    "",
    "A secret's value is never shown, not even a built-in development one.",
    "",
    all.map(sectionTable).join("\n\n")
  ].join("\n")

/** What the README holds between the markers, or why it cannot be found. */
export const tableIn = (readme: string): Either.Either<string, string> => {
  const start = readme.indexOf(CONFIG_START)
  const end = readme.indexOf(CONFIG_END)
  if (start === -1 || end === -1 || end < start) {
    return Either.left(`README.md needs the markers ${CONFIG_START} and ${CONFIG_END}, in that order`)
  }
  return Either.right(readme.slice(start + CONFIG_START.length, end).trim())
}

/** The README with the text between the markers replaced by `table`; the rest is left as it is. */
export const withTable = (readme: string, table: string): Either.Either<string, string> =>
  Either.map(tableIn(readme), () => {
    const start = readme.indexOf(CONFIG_START) + CONFIG_START.length
    const end = readme.indexOf(CONFIG_END)
    return `${readme.slice(0, start)}\n${table}\n${readme.slice(end)}`
  })
