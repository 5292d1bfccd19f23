// Small SVG charts: a line for a trend, bars for amounts per period. Each page shows the same
// numbers in a table beside the chart, so the chart is a picture of the table, not the record.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const W = 600;
const H = 220;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

function frame(label, points) {
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  root.append(svg("title", {}, label));
  const values = points.map((p) => p.value);
  const max = Math.max(1, ...values);
  const min = Math.min(0, ...values);
  const y = (v) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - (v - min) / (max - min || 1));
  root.append(svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }));
  root.append(svg("text", { x: PAD.left - 6, y: y(max) + 4, "text-anchor": "end" }, Math.round(max).toLocaleString("en")));
  if (min < 0) root.append(svg("text", { x: PAD.left - 6, y: y(min), "text-anchor": "end" }, Math.round(min).toLocaleString("en")));
  const step = (W - PAD.left - PAD.right) / Math.max(1, points.length);
  const every = Math.ceil(points.length / 8);
  points.forEach((p, i) => {
    if (i % every === 0) {
      root.append(svg("text", { x: PAD.left + step * (i + 0.5), y: H - 8, "text-anchor": "middle" }, p.label));
    }
  });
  return { root, y, step };
}

export function lineChart(points, label) {
  const { root, y, step } = frame(label, points);
  if (points.length) {
    const d = points.map((p, i) => `${i ? "L" : "M"}${(PAD.left + step * (i + 0.5)).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    root.append(svg("path", { class: "line", d }));
  }
  return root;
}

export function barChart(points, label) {
  const { root, y, step } = frame(label, points);
  points.forEach((p, i) => {
    const top = Math.min(y(p.value), y(0));
    const height = Math.max(1, Math.abs(y(0) - y(p.value)));
    root.append(svg("rect", { class: "bar", x: (PAD.left + step * i + step * 0.15).toFixed(1), y: top.toFixed(1), width: (step * 0.7).toFixed(1), height: height.toFixed(1) }));
  });
  return root;
}
