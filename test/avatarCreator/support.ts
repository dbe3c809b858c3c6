import { Effect } from "effect"
import pg from "pg"
import sharp from "sharp"
import { expect } from "vitest"
import { Ledger } from "../../src/services/credits/Ledger.js"
import { call, freshEmail } from "../support/api.js"
import type { InProcessApp, InProcessServices } from "../support/inProcessApp.js"

export const PASSWORD = "Correct-Horse-42"
export const BASE = "/api/apps/avatar-creator"

/** Helpers over one in-process app and a Postgres pool of this run's database. */
export const helpers = (app: () => InProcessApp, db: () => pg.Pool) => {
  const run = <A, E>(effect: Effect.Effect<A, E, InProcessServices>) => Effect.runPromise(Effect.provide(effect, app().context))

  /** A registered user (100 welcome credits) moved to `credits`, with a token; `enterprise` tags them unlimited. */
  const newUser = async (credits = 100, enterprise = false) => {
    const r = await call(app(), "POST", "/api/auth/register", { email: freshEmail("avatar"), password: PASSWORD })
    expect(r.status).toBe(201)
    const id = r.body["data"].user.id as string
    const token = r.body["data"].token as string
    if (credits !== 100) {
      await run(Effect.flatMap(Ledger, (ledger) =>
        credits > 100
          ? ledger.credit({ userId: id, amount: credits - 100, key: `seed:${id}`, kind: "bonus", reason: "test" })
          : ledger.debit({ userId: id, amount: 100 - credits, key: `seed:${id}`, kind: "adjustment", reason: "test" })))
    }
    if (enterprise) await db().query("UPDATE users SET tags = array_append(tags, 'enterprise_unlimited') WHERE id = $1", [id])
    return { id, token, auth: { authorization: `Bearer ${token}` } }
  }
  const balance = (userId: string) => run(Effect.flatMap(Ledger, (l) => l.balance(userId)))
  const ledgerRows = async (userId: string) =>
    (await db().query<{ kind: string; delta: string }>("SELECT kind, delta FROM credit_ledger WHERE user_id = $1 ORDER BY id", [userId])).rows
      .map((r) => `${r.kind}:${r.delta}`)
  const api = (method: string, path: string, token: string, body?: unknown) =>
    call(app(), method, `${BASE}${path}`, body, { authorization: `Bearer ${token}` })
  const newProject = async (token: string, name = "My avatars") => {
    const r = await api("POST", "/projects", token, { name })
    expect(r.status).toBe(201)
    return r.body["project"].id as string
  }
  const upload = async (token: string, projectId: string, bytes: Uint8Array, fields: Record<string, string> = { name: "Me" }, fileName = "me.png") => {
    const form = new FormData()
    for (const [key, value] of Object.entries(fields)) form.append(key, value)
    form.append("image", new Blob([bytes]), fileName)
    const res = await fetch(app().url(`${BASE}/projects/${projectId}/avatars/upload`), {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: form
    })
    return { status: res.status, headers: res.headers, body: await res.json() as Record<string, any> }
  }
  const download = async (token: string, path: string) => {
    const res = await fetch(app().url(path), { headers: { authorization: `Bearer ${token}` } })
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) }
  }
  return { run, newUser, balance, ledgerRows, api, newProject, upload, download }
}

/** A real picture of `format`, `width` x `height`, carrying EXIF (a copyright canary) to be stripped. */
export const photo = (format: "png" | "jpeg" | "webp", width: number, height: number) => {
  const image = sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 40 } } })
    .withMetadata({ exif: { IFD0: { Copyright: "exif-canary-3f9a" } } })
  return format === "png" ? image.png().toBuffer() : format === "jpeg" ? image.jpeg().toBuffer() : image.webp().toBuffer()
}
