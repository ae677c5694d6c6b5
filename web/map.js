// Maps drawn as SVG in local metres: the venue plan when there is one, else a frame fitted to the
// points shown, with a metre grid and a scale bar. No tiles, nothing fetched from elsewhere.

const SVG = 'http://www.w3.org/2000/svg';
const EARTH_RADIUS_M = 6371008.8; // the server's sphere, so metres here match its distances
const RAD = Math.PI / 180;
const MIN_EXTENT_M = 20; // a single point still gets a readable frame around it

export function s(name, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** Local metres (x east, y north) around an origin: equirectangular, exact enough at venue scale. */
export function localFrame(origin) {
  const cos = Math.cos(origin.latitude * RAD);
  return (lat, lon) => ({
    x: (lon - origin.longitude) * RAD * EARTH_RADIUS_M * cos,
    y: (lat - origin.latitude) * RAD * EARTH_RADIUS_M,
  });
}

/** The venue area a local point is in (the smallest one, as booths sit inside halls). */
export function areaAt(venue, x, y) {
  let best = null;
  for (const a of venue?.areas ?? []) {
    if (x >= a.x && x <= a.x + a.width && y >= a.y && y <= a.y + a.depth && (!best || a.width * a.depth < best.width * best.depth)) best = a;
  }
  return best;
}

/**
 * What a map shows: the venue plan when some points lie on it (or there are none), else the
 * bounding box of the points around their centre. `points` are {latitude, longitude}. On the
 * plan, `fit: 'plan'` frames the whole plan, `fit: 'points'` zooms to the points (with at least
 * `minExtent` metres around them, so the rooms they are in stay readable).
 * Returns null when there is nothing to draw.
 */
export function sceneFor(venue, points, { fit = 'plan', minExtent = MIN_EXTENT_M } = {}) {
  if (venue) {
    const toLocal = localFrame(venue.origin);
    const margin = Math.max(venue.width_m, venue.depth_m) * 0.25;
    const near = points.map((p) => toLocal(p.latitude, p.longitude)).filter(({ x, y }) =>
      x >= -margin && x <= venue.width_m + margin && y >= -margin && y <= venue.depth_m + margin);
    if (near.length > 0 || points.length === 0) {
      const b = fit === 'points' && near.length
        ? { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity }
        : { minX: 0, minY: 0, maxX: venue.width_m, maxY: venue.depth_m };
      for (const { x, y } of near) extend(b, x, y);
      return { venue, origin: venue.origin, bounds: b, toLocal, minExtent };
    }
  }
  if (points.length === 0) return null;
  let [minLat, maxLat, minLon, maxLon] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const p of points) {
    minLat = Math.min(minLat, p.latitude); maxLat = Math.max(maxLat, p.latitude);
    minLon = Math.min(minLon, p.longitude); maxLon = Math.max(maxLon, p.longitude);
  }
  const origin = { latitude: (minLat + maxLat) / 2, longitude: (minLon + maxLon) / 2 };
  const toLocal = localFrame(origin);
  const b = { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
  for (const p of points) { const { x, y } = toLocal(p.latitude, p.longitude); extend(b, x, y); }
  return { venue: null, origin, bounds: b, toLocal, minExtent: MIN_EXTENT_M };
}

function extend(b, x, y) {
  b.minX = Math.min(b.minX, x); b.maxX = Math.max(b.maxX, x);
  b.minY = Math.min(b.minY, y); b.maxY = Math.max(b.maxY, y);
}

/** Whether two scenes frame the same area (so markers need not be placed again). */
export function sameScene(a, b) {
  if (!a || !b || a.venue !== b.venue) return false;
  const size = Math.max(a.bounds.maxX - a.bounds.minX, a.bounds.maxY - a.bounds.minY, MIN_EXTENT_M);
  const close = (p, q) => Math.abs(p - q) < size * 0.01;
  return close(a.origin.latitude * RAD * EARTH_RADIUS_M, b.origin.latitude * RAD * EARTH_RADIUS_M)
    && close(a.origin.longitude * RAD * EARTH_RADIUS_M, b.origin.longitude * RAD * EARTH_RADIUS_M)
    && ['minX', 'minY', 'maxX', 'maxY'].every((k) => close(a.bounds[k], b.bounds[k]));
}

/** 1, 2 or 5 times a power of ten, at most `m`. */
function niceLength(m) {
  const p = 10 ** Math.floor(Math.log10(m));
  return [5, 2, 1].map((f) => f * p).find((v) => v <= m) ?? p;
}

const formatMetres = (m) => (m >= 1000 ? `${m / 1000} km` : `${m} m`);

/**
 * An SVG map in a figure. Its user units are CSS pixels (the view box follows the element's
 * size), so markers and text keep their size on any screen while metres scale to fit.
 */
export class MapView {
  constructor(figure, label) {
    this.svg = s('svg', { class: 'map', role: 'img', 'aria-label': label });
    this.layers = {};
    // Area names sit above the plan and the heat but below the markers, which matter more.
    for (const name of ['base', 'heat', 'labels', 'marks', 'top', 'overlay']) this.svg.append(this.layers[name] = s('g', { class: `layer-${name}` }));
    figure.prepend(this.svg);
    this.scene = null;
    this.onLayout = () => {};
    this.size = { width: 0, height: 0 };
    new ResizeObserver(() => this.layout()).observe(this.svg);
  }

  setLabel(label) { this.svg.setAttribute('aria-label', label); }

  setScene(scene) {
    this.scene = scene;
    this.layout();
  }

  /** Pixel position of a latitude/longitude in the current scene. */
  project(lat, lon) {
    const { x, y } = this.scene.toLocal(lat, lon);
    return this.toView(x, y);
  }

  toView(x, y) {
    const t = this.transform;
    return { x: t.ox + (x - t.cx) * t.scale, y: t.oy - (y - t.cy) * t.scale };
  }

  /** Whether a pixel position is inside the drawing. */
  visible(p) {
    return p.x >= 0 && p.y >= 0 && p.x <= this.size.width && p.y <= this.size.height;
  }

  layout() {
    const width = this.svg.clientWidth;
    const height = this.svg.clientHeight;
    if (!width || !height || !this.scene) return; // hidden, or nothing to draw yet
    this.size = { width, height };
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const b = this.scene.bounds;
    const pad = 36; // pixels kept free around the content, for markers and labels
    const w = Math.max(b.maxX - b.minX, this.scene.minExtent);
    const d = Math.max(b.maxY - b.minY, this.scene.minExtent);
    const scale = Math.min((width - 2 * pad) / w, (height - 2 * pad - 24) / d);
    this.transform = { scale, cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, ox: width / 2, oy: (height - 24) / 2 };
    this.#drawBase();
    this.onLayout();
  }

  #drawBase() {
    const { width, height } = this.size;
    const { scale } = this.transform;
    const base = this.layers.base;
    base.replaceChildren(s('rect', { class: 'map-bg', width, height }));

    // A grid every scale-bar length, so distances can be read anywhere on the map.
    const step = niceLength((width / 5) / scale);
    const grid = s('g', { class: 'grid' });
    const topLeft = this.#toLocal(0, 0);
    const bottomRight = this.#toLocal(width, height);
    if ((bottomRight.x - topLeft.x) / step < 80) {
      for (let x = Math.ceil(topLeft.x / step) * step; x <= bottomRight.x; x += step) {
        const px = this.toView(x, 0).x;
        grid.append(s('line', { x1: px, x2: px, y1: 0, y2: height }));
      }
      for (let y = Math.ceil(bottomRight.y / step) * step; y <= topLeft.y; y += step) {
        const py = this.toView(0, y).y;
        grid.append(s('line', { x1: 0, x2: width, y1: py, y2: py }));
      }
    }
    base.append(grid);

    this.layers.labels.replaceChildren();
    const venue = this.scene.venue;
    if (venue) base.append(this.#drawVenue(venue));

    // Scale bar and north arrow, bottom left.
    const barPx = step * scale;
    const y = height - 14;
    this.layers.overlay.replaceChildren(
      s('rect', { class: 'scale-bg', x: 6, y: y - 22, width: barPx + 60, height: 30, rx: 4 }),
      s('path', { class: 'scale-bar', d: `M12 ${y - 6} V${y} H${12 + barPx} V${y - 6}` }),
      s('text', { class: 'scale-text', x: 16 + barPx, y }, formatMetres(step)),
      s('text', { class: 'north', x: width - 16, y: 22, 'text-anchor': 'middle' }, 'N'),
      s('path', { class: 'north-arrow', d: `M${width - 16} 28 l-5 12 h10 z` }),
    );
  }

  #toLocal(px, py) {
    const t = this.transform;
    return { x: t.cx + (px - t.ox) / t.scale, y: t.cy - (py - t.oy) / t.scale };
  }

  #drawVenue(venue) {
    const g = s('g', { class: 'venue' });
    const rect = (x, y, w, d, cls) => {
      const a = this.toView(x, y + d);
      return s('rect', { class: cls, x: a.x, y: a.y, width: w * this.transform.scale, height: d * this.transform.scale });
    };
    g.append(rect(0, 0, venue.width_m, venue.depth_m, 'venue-outline'));
    // Large areas first, so booths drawn inside a hall stay on top.
    const areas = [...venue.areas].sort((p, q) => q.width * q.depth - p.width * p.depth);
    for (const a of areas) g.append(rect(a.x, a.y, a.width, a.depth, `area area-${a.kind}`));
    // Each name goes at the top of the area's visible part (people gather in the middle), at the
    // largest font up to 13px that fits it; none when that would be illegible.
    const { width, height } = this.size;
    for (const a of areas) {
      const p = this.toView(a.x, a.y + a.depth);
      const q = this.toView(a.x + a.width, a.y);
      const [x0, x1, y0, y1] = [Math.max(p.x, 0), Math.min(q.x, width), Math.max(p.y, 0), Math.min(q.y, height)];
      const size = Math.min(13, (y1 - y0) * 0.6, (x1 - x0 - 4) / (a.name.length * 0.6));
      if (size < 8) continue;
      const roomy = y1 - y0 > 3 * size;
      // A hall holds the other areas: its name goes in its bottom-left corner, clear of theirs.
      const corner = a.kind === 'hall' && roomy;
      this.layers.labels.append(s('text', {
        class: 'area-label',
        x: corner ? x0 + 6 : (x0 + x1) / 2,
        y: corner ? Math.min(y1 - 6, height - 42) /* above the scale bar */ : roomy ? y0 + size + 3 : (y0 + y1) / 2 + size / 3,
        'font-size': size,
        'text-anchor': corner ? 'start' : 'middle',
      }, a.name));
    }
    return g;
  }
}
