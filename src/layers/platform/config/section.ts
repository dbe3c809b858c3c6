import type { Config } from "effect"
import type { NodeEnv } from "../../../services/platform/AppConfig.js"
import type { Variable, VariableDoc } from "./variable.js"

type Variables = Readonly<Record<string, Variable<unknown>>>

/** What a section's variables read to. */
export type Values<V extends Variables> = { readonly [K in keyof V]: Config.Config.Success<V[K]["config"]> }

/** What a section may depend on besides its own variables. */
export interface BuildContext {
  readonly env: NodeEnv
}

/**
 * A group of variables read together: one README table, and (through `build`) one part of
 * AppConfigShape.
 */
export interface Section<V extends Variables, Out> {
  readonly title: string
  readonly variables: V
  readonly build: (values: Values<V>, context: BuildContext) => Out
}

/** Any section seen only for its variables (reading them, documenting them). */
export interface SectionVariables {
  readonly title: string
  readonly variables: Variables
}

export const section = <const V extends Variables, Out>(
  title: string,
  variables: V,
  build: (values: Values<V>, context: BuildContext) => Out
): Section<V, Out> => ({ title, variables, build })

export const docsOf = (s: SectionVariables): ReadonlyArray<VariableDoc> =>
  Object.values(s.variables).map((v) => v.doc)
