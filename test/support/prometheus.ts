import parsePrometheusTextFormat from "parse-prometheus-text-format"

type Family = ReturnType<typeof parsePrometheusTextFormat>[number]

/** A parsed /metrics answer (parsed by parse-prometheus-text-format, never by hand). */
export interface Scrape {
  /** Every family by name; a histogram `h` appears as its series `h_count`, `h_sum` and `h_bucket`. */
  readonly families: ReadonlyMap<string, ReadonlyArray<Family>>
  /** The sum of the samples of `name` whose labels include `labels` (0 when none). */
  readonly value: (name: string, labels?: Readonly<Record<string, string>>) => number
  /** The observation count of histogram `name` over the label sets that include `labels`. */
  readonly count: (name: string, labels?: Readonly<Record<string, string>>) => number
  /** The label sets of the samples of `name`. */
  readonly labelSets: (name: string) => ReadonlyArray<Readonly<Record<string, string>>>
}

const matches = (have: Readonly<Record<string, string>> | undefined, want: Readonly<Record<string, string>>) =>
  Object.entries(want).every(([k, v]) => have?.[k] === v)

/**
 * The library follows prom2json, which folds a histogram's samples into one unlabelled sample:
 * labelled histograms lose their labels. So histogram families are declared untyped before parsing,
 * and the library then reads their `_count`, `_sum` and `_bucket` series as plain samples, labels kept.
 */
export const parseScrape = (text: string): Scrape => {
  const parsed = parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) histogram$/gm, "# TYPE $1 untyped"))
  const families = new Map<string, Array<Family>>()
  for (const family of parsed) families.set(family.name, [...(families.get(family.name) ?? []), family])
  const samples = (name: string) => (families.get(name) ?? []).flatMap((f) => f.metrics)
  const value = (name: string, labels: Readonly<Record<string, string>> = {}) =>
    samples(name).filter((m) => matches(m.labels, labels)).reduce((total, m) => total + Number(m.value ?? 0), 0)
  return {
    families,
    value,
    count: (name, labels = {}) => value(`${name}_count`, labels),
    labelSets: (name) => samples(name).map((m) => m.labels ?? {})
  }
}
