import { Config, ConfigError, Duration, Either, Option, Redacted } from "effect"

/**
 * One environment variable, declared once: its documentation (name, default, what it accepts, what
 * it does) and the Config that reads it are built from the same declaration, so the README table
 * (see table.ts) cannot drift from what the app reads.
 *
 * Why not Config.withDescription: the description (and the default) end up inside Config's internal
 * nodes with no public accessor, so reading them back means walking private op codes; and a default
 * given to Config.withDefault is the parsed value (a Duration, a policy object), not the text an
 * operator writes. Here every default is the environment text and goes through the same parser.
 */
export interface VariableDoc {
  readonly name: string
  readonly description: string
  /** What the variable accepts, such as "integer 1 to 200" or "duration". */
  readonly accepts: string
  /** The default as environment text; never set for a secret. */
  readonly default: Option.Option<string>
  /** What happens when the variable is unset and there is no text default (or the secret's). */
  readonly whenUnset: Option.Option<string>
  readonly secret: boolean
}

export interface Variable<A> {
  readonly doc: VariableDoc
  readonly config: Config.Config<A>
}

interface Common {
  readonly name: string
  readonly description: string
}

const doc = (
  common: Common,
  accepts: string,
  options: { readonly default?: string; readonly whenUnset?: string; readonly secret?: boolean }
): VariableDoc => ({
  name: common.name,
  description: common.description,
  accepts,
  default: Option.fromNullable(options.default),
  whenUnset: Option.fromNullable(options.whenUnset),
  secret: options.secret ?? false
})

/**
 * Each problem as its own error naming the variable. The path is set here because the parsers run
 * outside the variable's own node (after its default or its option), where Effect reports no path.
 */
const invalid = (name: string, problems: ReadonlyArray<string>): ConfigError.ConfigError =>
  problems.map((p) => ConfigError.InvalidData([name], p)).reduce((l, r) => ConfigError.And(l, r))

/** A variable whose default is environment text read by the same parser as a set value. */
export const parsed = <A>(
  options: Common & {
    readonly default: string
    readonly accepts: string
    readonly parse: (raw: string) => Either.Either<A, ReadonlyArray<string>>
  }
): Variable<A> => ({
  doc: doc(options, options.accepts, { default: options.default }),
  config: Config.string(options.name).pipe(
    Config.withDefault(options.default),
    Config.mapOrFail((raw) => Either.mapLeft(options.parse(raw), (problems) => invalid(options.name, problems)))
  )
})

/** A variable with no default: None when unset. */
export const optionalParsed = <A>(
  options: Common & {
    readonly whenUnset: string
    readonly accepts: string
    readonly parse: (raw: string) => Either.Either<A, ReadonlyArray<string>>
  }
): Variable<Option.Option<A>> => ({
  doc: doc(options, options.accepts, { whenUnset: options.whenUnset }),
  config: Config.option(Config.string(options.name)).pipe(
    Config.mapOrFail((raw) =>
      Option.match(raw, {
        onNone: () => Either.right(Option.none()),
        onSome: (text) =>
          Either.map(
            Either.mapLeft(options.parse(text), (problems) => invalid(options.name, problems)),
            Option.some
          )
      })
    )
  )
})

export const text = (options: Common & { readonly default: string }): Variable<string> => ({
  doc: doc(options, "text", { default: options.default }),
  config: Config.string(options.name).pipe(Config.withDefault(options.default))
})

/** Unset or blank is None. */
export const optionalText = (options: Common & { readonly whenUnset: string; readonly accepts?: string }): Variable<Option.Option<string>> => ({
  doc: doc(options, options.accepts ?? "text", { whenUnset: options.whenUnset }),
  config: Config.option(Config.string(options.name)).pipe(Config.map(Option.filter((s) => s.trim().length > 0)))
})

/** A secret: unset or blank is None; its documentation never carries a value. */
export const secret = (options: Common & { readonly whenUnset: string }): Variable<Option.Option<Redacted.Redacted<string>>> => ({
  doc: doc(options, "secret text", { whenUnset: options.whenUnset, secret: true }),
  config: Config.option(Config.redacted(options.name)).pipe(
    Config.map(Option.filter((s) => Redacted.value(s).trim().length > 0))
  )
})

/** A secret with a built-in development value; the value is used but never documented. */
export const secretWithDefault = (
  options: Common & { readonly default: string; readonly whenUnset: string; readonly accepts: string }
): Variable<Redacted.Redacted<string>> => ({
  doc: doc(options, options.accepts, { whenUnset: options.whenUnset, secret: true }),
  config: Config.redacted(options.name).pipe(Config.withDefault(Redacted.make(options.default)))
})

export const boolean = (options: Common & { readonly default: boolean }): Variable<boolean> => ({
  doc: doc(options, "true | false", { default: String(options.default) }),
  config: Config.boolean(options.name).pipe(Config.withDefault(options.default))
})

const integerBetween = (name: string, min: number, max: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `expected an integer from ${min} to ${max}`, validation: (n) => n >= min && n <= max })
  )

const integerAccepts = (min: number, max: number) =>
  max === Number.MAX_SAFE_INTEGER ? `integer >= ${min}` : `integer ${min} to ${max}`

export const integer = (
  options: Common & { readonly min: number; readonly max: number; readonly default: number }
): Variable<number> => ({
  doc: doc(options, integerAccepts(options.min, options.max), { default: String(options.default) }),
  config: integerBetween(options.name, options.min, options.max).pipe(Config.withDefault(options.default))
})

export const optionalInteger = (
  options: Common & { readonly min: number; readonly max: number; readonly whenUnset: string }
): Variable<Option.Option<number>> => ({
  doc: doc(options, integerAccepts(options.min, options.max), { whenUnset: options.whenUnset }),
  config: Config.option(integerBetween(options.name, options.min, options.max))
})

const oneOfParser = <const A extends string>(values: ReadonlyArray<A>) => (raw: string): Either.Either<A, ReadonlyArray<string>> => {
  const value = raw.trim().toLowerCase()
  return (values as ReadonlyArray<string>).includes(value)
    ? Either.right(value as A)
    : Either.left([`expected one of ${values.join(", ")}`])
}

export const oneOf = <const A extends string>(
  options: Common & { readonly values: ReadonlyArray<A>; readonly default: NoInfer<A> }
): Variable<A> =>
  parsed({ ...options, accepts: options.values.join(" | "), parse: oneOfParser(options.values) })

export const optionalOneOf = <const A extends string>(
  options: Common & { readonly values: ReadonlyArray<A>; readonly whenUnset: string }
): Variable<Option.Option<A>> =>
  optionalParsed({ ...options, accepts: options.values.join(" | "), parse: oneOfParser(options.values) })

/** "5000" is milliseconds; anything else is an Effect duration such as "5 seconds". */
export const parseDuration = (raw: string): Either.Either<Duration.Duration, ReadonlyArray<string>> => {
  const trimmed = raw.trim()
  if (/^\d+$/.test(trimmed)) return Either.right(Duration.millis(Number(trimmed)))
  const decoded = Duration.decodeUnknown(trimmed)
  return Option.isSome(decoded)
    ? Either.right(decoded.value)
    : Either.left([`expected milliseconds (5000) or a duration ("5 seconds")`])
}

export const duration = (options: Common & { readonly default: string }): Variable<Duration.Duration> =>
  parsed({ ...options, accepts: "duration", parse: parseDuration })

/** A comma list checked item by item; each problem becomes its own line naming the variable. */
export const list = <A>(
  options: Common & {
    readonly default: string
    readonly accepts: string
    readonly parse: (items: ReadonlyArray<string>) => Either.Either<A, ReadonlyArray<string>>
  }
): Variable<A> =>
  parsed({
    ...options,
    parse: (raw) => options.parse(raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0))
  })

/** The same variable (and documentation) read into another shape. */
export const mapVariable = <A, B>(variable: Variable<A>, f: (a: A) => B): Variable<B> => ({
  doc: variable.doc,
  config: Config.map(variable.config, f)
})
