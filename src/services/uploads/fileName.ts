const MAX_NAME = 120

/**
 * The client's file name reduced to something safe to show and to put in Content-Disposition: no path
 * (either separator), no control or quoting characters, no leading dots, bounded. It is never used on disk.
 */
export const displayName = (clientName: string | undefined): string => {
  const base = (clientName ?? "").split(/[/\\]/).at(-1) ?? ""
  // eslint-disable-next-line no-control-regex
  const cleaned = base.replace(/[\u0000-\u001f\u007f-\u009f"'`$<>|;&*?:%]/g, "_").replace(/^[.\s]+/, "").trim()
  const stem = cleaned.replace(/\.[^.]*$/, "").slice(0, MAX_NAME)
  return stem === "" ? "file" : stem
}

/** `attachment` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987). */
export const contentDisposition = (name: string, extension: string): string => {
  const full = `${name}.${extension}`
  const ascii = full.replace(/[^A-Za-z0-9._ -]/g, "_")
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(full)}`
}
