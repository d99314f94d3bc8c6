/**
 * Small SVG chart helpers for report.html: line chart, bar chart (histogram) and timeline.
 * Plain strings, no dependencies, no external assets.
 */

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563', '#65a30d', '#9333ea']

export function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks (lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / count
  const p = Math.pow(10, Math.floor(Math.log10(raw)))
  const step = [1, 2, 2.5, 5, 10].map(m => m * p).find(s => s >= raw) ?? 10 * p
  const out: number[] = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v * 1e9) / 1e9)
  return out
}

export function fmt (v: number): string {
  const a = Math.abs(v)
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`
  if (a >= 100 || Number.isInteger(v)) return `${Math.round(v)}`
  return `${+v.toFixed(2)}`
}

interface Frame { w: number, h: number, left: number, right: number, top: number, bottom: number }
const FRAME: Frame = { w: 640, h: 300, left: 56, right: 16, top: 16, bottom: 44 }

function axes (f: Frame, xs: number[], ys: number[], x: (v: number) => number, y: (v: number) => number, xLabel: string, yLabel: string): string {
  const parts: string[] = []
  const x0 = f.left
  const x1 = f.w - f.right
  const y0 = f.h - f.bottom
  const y1 = f.top
  for (const t of ys) {
    parts.push(`<line x1="${x0}" x2="${x1}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e7eb"/>`)
    parts.push(`<text x="${x0 - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${esc(fmt(t))}</text>`)
  }
  for (const t of xs) {
    parts.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${y0}" y2="${y0 + 4}" stroke="#6b7280"/>`)
    parts.push(`<text x="${x(t).toFixed(1)}" y="${y0 + 16}" text-anchor="middle">${esc(fmt(t))}</text>`)
  }
  parts.push(`<line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}" stroke="#6b7280"/>`)
  parts.push(`<line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}" stroke="#6b7280"/>`)
  parts.push(`<text x="${(x0 + x1) / 2}" y="${f.h - 6}" text-anchor="middle" class="label">${esc(xLabel)}</text>`)
  parts.push(`<text transform="translate(14 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" class="label">${esc(yLabel)}</text>`)
  return parts.join('')
}

function svgOpen (f: Frame, title: string, cls: string): string {
  return `<svg class="chart ${cls}" viewBox="0 0 ${f.w} ${f.h}" width="${f.w}" height="${f.h}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>${esc(title)}</title>`
}

function empty (f: Frame, title: string, cls: string, why: string): string {
  return `${svgOpen(f, title, cls)}<rect x="0" y="0" width="${f.w}" height="${f.h}" fill="#f9fafb"/><text x="${f.w / 2}" y="${f.h / 2}" text-anchor="middle" class="label">${esc(why)}</text></svg>`
}

export interface Series { name: string, points: Array<[number, number]> }

/** Step-free polyline chart; y from 0 to yMax (default: the data's max). */
export function lineChart (title: string, cls: string, series: Series[], xLabel: string, yLabel: string, yMax?: number): string {
  const f = FRAME
  const all = series.flatMap(s => s.points)
  if (all.length === 0) return empty(f, title, cls, 'no data')
  // x up to where every series has reached 99.5% (a CDF's far tail would squash the rest)
  const reach = series.filter(s => s.points.length > 0).map(s => (s.points.find(p => p[1] >= 0.995) ?? s.points[s.points.length - 1]!)[0])
  const xMax = (yMax === 1 && reach.length > 0 ? Math.max(...reach) * 1.1 : Math.max(...all.map(p => p[0]))) || 1
  const top = yMax ?? (Math.max(...all.map(p => p[1])) || 1)
  const x = (v: number): number => f.left + (v / xMax) * (f.w - f.left - f.right)
  const y = (v: number): number => f.h - f.bottom - (v / top) * (f.h - f.top - f.bottom)
  const parts = [svgOpen(f, title, cls), axes(f, ticks(0, xMax), ticks(0, top), x, y, xLabel, yLabel)]
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!
    const shown = s.points.filter(p => p[0] <= xMax)
    const cut = s.points.find(p => p[0] > xMax)
    if (cut !== undefined) shown.push([xMax, cut[1]])
    const pts: Array<[number, number]> = shown.length > 0 && shown[0]![0] > 0 ? [[0, 0], ...shown] : shown
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}"><title>${esc(s.name)}</title></polyline>`)
    parts.push(`<rect x="${f.left + 12}" y="${f.top + 4 + i * 16}" width="10" height="10" fill="${color}"/><text x="${f.left + 26}" y="${f.top + 13 + i * 16}">${esc(s.name)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('')
}

/** Histogram bars: bin i spans [edges[i], edges[i+1]). */
export function barChart (title: string, cls: string, edges: number[], counts: number[], xLabel: string, yLabel: string, color = PALETTE[0]!): string {
  const f = FRAME
  if (counts.length === 0 || counts.every(c => c === 0)) return empty(f, title, cls, 'no data')
  const width = edges.length > 1 ? edges[1]! - edges[0]! : 1
  const xMax = edges[edges.length - 1]! + width
  const top = Math.max(...counts)
  const x = (v: number): number => f.left + (v / xMax) * (f.w - f.left - f.right)
  const y = (v: number): number => f.h - f.bottom - (v / top) * (f.h - f.top - f.bottom)
  const parts = [svgOpen(f, title, cls), axes(f, ticks(0, xMax), ticks(0, top), x, y, xLabel, yLabel)]
  counts.forEach((c, i) => {
    if (c === 0) return
    const x0 = x(edges[i]!)
    const bw = Math.max(1, x(edges[i]! + width) - x0 - 1)
    const range = i === counts.length - 1 ? `${fmt(edges[i]!)} and more` : `${fmt(edges[i]!)}–${fmt(edges[i]! + width)}`
    parts.push(`<rect x="${x0.toFixed(1)}" y="${y(c).toFixed(1)}" width="${bw.toFixed(1)}" height="${(f.h - f.bottom - y(c)).toFixed(1)}" fill="${color}"><title>${esc(`${range}: ${c}`)}</title></rect>`)
  })
  parts.push('</svg>')
  return parts.join('')
}

export interface TimelineRow {
  name: string
  color: string
  /** instants (ms) */
  marks: Array<{ t: number, label: string }>
  /** intervals (ms) */
  spans: Array<{ from: number, to: number, label: string }>
}

/** One row per kind of fault; ticks for instants, bands for intervals. */
export function timeline (title: string, cls: string, rows: TimelineRow[], endMs: number): string {
  const rowH = 26
  const f: Frame = { w: 640, h: FRAME.top + FRAME.bottom + Math.max(1, rows.length) * rowH, left: 110, right: 16, top: 12, bottom: 40 }
  if (rows.length === 0) return empty({ ...f, h: 120 }, title, cls, 'no faults in this scenario')
  const xMax = endMs / 1000 || 1
  const x = (ms: number): number => f.left + (Math.min(ms / 1000, xMax) / xMax) * (f.w - f.left - f.right)
  const parts = [svgOpen(f, title, cls)]
  const y0 = f.h - f.bottom
  for (const t of ticks(0, xMax)) {
    parts.push(`<line x1="${x(t * 1000).toFixed(1)}" x2="${x(t * 1000).toFixed(1)}" y1="${f.top}" y2="${y0 + 4}" stroke="#e5e7eb"/>`)
    parts.push(`<text x="${x(t * 1000).toFixed(1)}" y="${y0 + 16}" text-anchor="middle">${esc(fmt(t))}</text>`)
  }
  parts.push(`<text x="${(f.left + f.w - f.right) / 2}" y="${f.h - 6}" text-anchor="middle" class="label">simulated time (s)</text>`)
  rows.forEach((r, i) => {
    const top = f.top + i * rowH
    parts.push(`<text x="${f.left - 8}" y="${top + rowH / 2 + 4}" text-anchor="end">${esc(r.name)}</text>`)
    parts.push(`<line x1="${f.left}" x2="${f.w - f.right}" y1="${top + rowH / 2}" y2="${top + rowH / 2}" stroke="#f3f4f6"/>`)
    for (const s of r.spans) {
      parts.push(`<rect x="${x(s.from).toFixed(1)}" y="${top + 4}" width="${Math.max(1, x(s.to) - x(s.from)).toFixed(1)}" height="${rowH - 8}" fill="${r.color}" opacity="0.35"><title>${esc(s.label)}</title></rect>`)
    }
    for (const m of r.marks) {
      parts.push(`<line x1="${x(m.t).toFixed(1)}" x2="${x(m.t).toFixed(1)}" y1="${top + 5}" y2="${top + rowH - 5}" stroke="${r.color}" stroke-width="1.5"><title>${esc(m.label)}</title></line>`)
    }
  })
  parts.push('</svg>')
  return parts.join('')
}
