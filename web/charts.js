// Small inline-SVG charts: no library, no network. Each returns an SVG element.

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(width, height, label, fixed = false) {
  return el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width: fixed ? width : "100%",
    role: "img",
    "aria-label": label,
    class: "chart",
  });
}

/** Accuracy over rounds: points [{x: label, y: 0..1}], y axis 0..100 %. */
export function lineChart(points, { label = "accuracy", width = 480, height = 220 } = {}) {
  const root = svg(width, height, label);
  const pad = { l: 44, r: 16, t: 14, b: 32 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const ys = points.map((p) => p.y).filter((y) => y !== null && y !== undefined);
  const lo = ys.length ? Math.max(0, Math.floor(Math.min(...ys) * 10) / 10 - 0.1) : 0;
  const hi = 1;
  const xAt = (i) => pad.l + (points.length <= 1 ? w / 2 : (i * w) / (points.length - 1));
  const yAt = (v) => pad.t + h - ((v - lo) / (hi - lo)) * h;
  for (let t = 0; t <= 4; t++) {
    const v = lo + ((hi - lo) * t) / 4;
    root.append(el("line", { x1: pad.l, x2: pad.l + w, y1: yAt(v), y2: yAt(v), class: "grid" }));
    root.append(el("text", { x: pad.l - 6, y: yAt(v) + 4, class: "tick", "text-anchor": "end" },
      `${Math.round(v * 100)}%`));
  }
  let path = "";
  points.forEach((p, i) => {
    root.append(el("text", { x: xAt(i), y: height - 10, class: "tick", "text-anchor": "middle" },
      p.x));
    if (p.y === null || p.y === undefined) return;
    path += `${path ? "L" : "M"}${xAt(i).toFixed(1)},${yAt(p.y).toFixed(1)}`;
  });
  if (path) root.append(el("path", { d: path, class: "line" }));
  points.forEach((p, i) => {
    if (p.y === null || p.y === undefined) return;
    const dot = el("circle", { cx: xAt(i), cy: yAt(p.y), r: 4, class: "dot" });
    dot.append(el("title", {}, `${p.x}: ${(p.y * 100).toFixed(1)}%`));
    root.append(dot);
    root.append(el("text", { x: xAt(i), y: yAt(p.y) - 9, class: "value", "text-anchor": "middle" },
      `${(p.y * 100).toFixed(1)}%`));
  });
  return root;
}

/** Horizontal bars: items [{label, value, note, cls}]. */
export function barChart(items, { label = "bars", width = 480, unit = "", digits = 4 } = {}) {
  const row = 24;
  const height = Math.max(row * items.length + 10, 40);
  const root = svg(width, height, label);
  const labelW = 110;
  const max = Math.max(...items.map((i) => Math.abs(i.value)), 1e-18);
  items.forEach((item, k) => {
    const y = 5 + k * row;
    const len = ((width - labelW - 90) * Math.abs(item.value)) / max;
    root.append(el("text", { x: labelW - 6, y: y + 15, class: "tick", "text-anchor": "end" },
      item.label));
    const bar = el("rect", {
      x: labelW, y: y + 3, width: Math.max(len, 1), height: row - 8, rx: 3,
      class: `bar ${item.cls || ""}`,
    });
    bar.append(el("title", {}, item.note || `${item.label}: ${item.value}`));
    root.append(bar);
    root.append(el("text", { x: labelW + len + 6, y: y + 15, class: "value" },
      `${Number(item.value).toFixed(digits)}${unit}`));
  });
  return root;
}

/** n×n heat map of values in [-1, 1] (cosine similarity), labelled rows and columns. */
export function heatMap(labels, matrix, { label = "similarity", cell = 44 } = {}) {
  const n = labels.length;
  const off = 100;
  const size = off + n * cell + 10;
  const root = svg(size + 70, size, label, true); // room for the last slanted label
  const colour = (v) => {
    const t = Math.max(-1, Math.min(1, v));
    if (t >= 0) return `rgb(${255 - Math.round(t * 200)}, ${255 - Math.round(t * 120)}, 255)`;
    return `rgb(255, ${255 + Math.round(t * 150)}, ${255 + Math.round(t * 150)})`;
  };
  labels.forEach((name, i) => {
    root.append(el("text", { x: off - 6, y: off + i * cell + cell / 2 + 4, class: "tick",
      "text-anchor": "end" }, name));
    const cx = off + i * cell + cell / 2;
    root.append(el("text", { x: cx, y: off - 8, class: "tick", "text-anchor": "start",
      transform: `rotate(-45 ${cx} ${off - 8})` }, name));
    matrix[i].forEach((v, j) => {
      const rect = el("rect", { x: off + j * cell, y: off + i * cell, width: cell - 2,
        height: cell - 2, fill: colour(v), class: "cell" });
      rect.append(el("title", {}, `${labels[i]} · ${labels[j]}: ${v.toFixed(3)}`));
      root.append(rect);
      root.append(el("text", { x: off + j * cell + cell / 2 - 1, y: off + i * cell + cell / 2 + 4,
        class: "cellv", "text-anchor": "middle" }, v.toFixed(2)));
    });
  });
  return root;
}

/** A star graph: the centre node and its weighted neighbours (reputation edges). */
export function starGraph(centre, edges, { width = 420, height = 260, short = (a) => a } = {}) {
  const root = svg(width, height, "graph around a trainer");
  const cx = width / 2;
  const cy = height / 2;
  const max = Math.max(...edges.map((e) => e.weight), 1e-18);
  edges.forEach((e, i) => {
    const angle = (2 * Math.PI * i) / Math.max(edges.length, 1) - Math.PI / 2;
    const x = cx + Math.cos(angle) * (height / 2 - 30);
    const y = cy + Math.sin(angle) * (height / 2 - 30);
    const other = e.from.toLowerCase() === centre.toLowerCase() ? e.to : e.from;
    const incoming = e.to.toLowerCase() === centre.toLowerCase();
    root.append(el("line", { x1: cx, y1: cy, x2: x, y2: y, class: incoming ? "edge in" : "edge",
      "stroke-width": 1 + (4 * e.weight) / max }));
    root.append(el("circle", { cx: x, cy: y, r: 8, class: "node" }));
    root.append(el("text", { x, y: y + 22, class: "tick", "text-anchor": "middle" }, short(other)));
  });
  root.append(el("circle", { cx, cy, r: 12, class: "node centre" }));
  root.append(el("text", { x: cx, y: cy + 28, class: "tick", "text-anchor": "middle" },
    short(centre)));
  return root;
}
