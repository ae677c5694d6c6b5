// The venue live: everyone's last ping on the plan as dots, redrawn whole each time the server
// pushes a new map (server-sent events), a heat layer, people per room and the ingest rate.
// Dots are anonymous (no id: each map replaces the last) unless the attendee chose to be named;
// the server leaves out counts and anonymous dots of fewer than k people.

import { getHeat, getPositions, getVenue, getZones, liveStream } from './api.js';
import { formatLatLon, formatNumber, formatTime, h } from './format.js';
import { MapView, areaAt, s, sameScene, sceneFor } from './map.js';

const $ = (id) => document.getElementById(id);
const RATE_SAMPLES = 60; // seconds of ingest rate in the chart
const LABEL_LIMIT = 15; // name labels on the map only while they do not crowd it
const HEAT_MIN_INTERVAL = 3000; // ms between heat refreshes while pings flow
const HEAT_MAX_INTERVAL = 30000; // ms: refresh anyway, so old pings fade out

export class Live {
  constructor() {
    this.dots = []; // the server's latest map: { latitude, longitude, time, person_id?, name? }
    this.rates = [];
    this.venue = undefined; // undefined: not asked yet; null: the server has none
    this.map = new MapView($('live-figure'), 'Live map of attendees');
    this.map.onLayout = () => { this.#placeMarkers(); this.#drawHeat(); };
    this.heatOn = $('heat-on');
    this.minutes = $('heat-minutes');
    this.heatOn.addEventListener('change', () => this.#refreshHeat());
    this.minutes.addEventListener('change', () => { this.#placeMarkers(); this.#refreshHeat(); });
    $('positions-details').addEventListener('toggle', () => this.#renderTable());
    $('live-error').querySelector('.retry').addEventListener('click', () => { this.hide(); this.show(); });
  }

  show() {
    if (this.stream) return;
    this.#setError(null);
    this.status('Connecting…');
    // Subscribe before reading the snapshot, so no ping falls between the two.
    const stream = this.stream = liveStream();
    stream.addEventListener('dots', (e) => this.#replace(JSON.parse(e.data)));
    stream.addEventListener('rate', (e) => this.#rate(JSON.parse(e.data)));
    stream.addEventListener('open', () => {
      this.#setError(null);
      this.status('Live: positions move as pings arrive.');
      if (this.lost) this.#loadSnapshot(); // catch up on what was missed while away
      this.lost = false;
    });
    stream.addEventListener('error', () => {
      if (stream !== this.stream) return;
      this.lost = true;
      if (stream.readyState === EventSource.CLOSED) {
        this.status('Disconnected.');
        this.#setError('The live stream was refused by the server.');
      } else {
        this.status('Reconnecting…');
        this.#setError('Lost the connection to the server. Reconnecting automatically…');
      }
    });
    this.#loadSnapshot();
  }

  hide() {
    this.stream?.close();
    this.stream = null;
  }

  status(text) {
    $('live-status').textContent = text;
  }

  #setError(message) {
    const box = $('live-error');
    box.hidden = !message;
    box.querySelector('.error-text').textContent = message ?? '';
    $('live-view').classList.toggle('offline', Boolean(message));
  }

  async #loadSnapshot() {
    try {
      const [venue, dots] = await Promise.all([getVenue(), getPositions()]);
      this.venue = venue;
      this.#replace(dots);
      this.#refreshHeat();
    } catch (error) {
      this.#setError(error.message);
    }
  }

  #replace(dots) {
    this.dots = dots;
    // Maps can arrive faster than frames: draw the newest once per frame.
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = null; this.#render(); });
  }

  #render() {
    const all = this.dots;
    $('live-empty').hidden = all.length > 0;
    const scene = sceneFor(this.venue ?? null, all); // null: nothing to draw yet
    if (scene && !sameScene(scene, this.map.scene)) this.map.setScene(scene); // places the markers
    else this.#placeMarkers();
    const name = this.map.scene?.venue?.name;
    this.map.setLabel(name ? `Live map of ${name}: ${all.length} attendees shown. The table below lists their positions.`
      : `Live map of ${all.length} attendees shown. The table below lists their positions.`);
    this.#renderTable();
  }

  #recent(d) {
    return Date.now() - Date.parse(d.time) <= Number(this.minutes.value) * 60000;
  }

  #placeMarkers() {
    if (!this.map.transform || !this.map.scene) return;
    const named = this.dots.filter((d) => d.person_id !== undefined);
    const labels = named.length <= LABEL_LIMIT;
    const r = this.map.size.width < 500 ? 5 : 7; // smaller dots on a phone, where the crowd is denser
    let off = 0;
    // Every map is drawn anew: an anonymous dot has no key to follow it from one map to the next.
    const marks = this.dots.map((d) => {
      const p = this.map.project(d.latitude, d.longitude);
      if (!this.map.visible(p)) off += 1;
      const who = d.name ?? 'Someone';
      const g = s('g', { class: `marker ${d.name ? 'named' : 'anonymous'}`, 'data-time': d.time },
        s('circle', { class: `marker-dot ${this.#recent(d) ? 'fresh' : 'stale'}`, r }),
        s('title', {}, `${who}, ${formatTime(d.time)}`));
      if (d.person_id !== undefined) g.dataset.person = d.person_id;
      g.style.transform = `translate(${p.x.toFixed(1)}px, ${p.y.toFixed(1)}px)`;
      if (d.name && labels) g.append(s('text', { x: 10, y: 4 }, d.name));
      return g;
    });
    this.map.layers.marks.replaceChildren(...marks);
    const scene = this.map.scene;
    let note = scene.venue ? `Plan of ${scene.venue.name}, north up.` : 'No venue plan: the view is fitted to the positions, north up.';
    if (off) note += ` ${off} ${off === 1 ? 'attendee is' : 'attendees are'} off the plan (see the table).`;
    $('live-frame').textContent = note;
  }

  async #refreshHeat() {
    this.heatAt = Date.now();
    this.heatTotal = this.total;
    this.#refreshZones();
    if (!this.heatOn.checked) {
      this.heat = null;
      this.#drawHeat();
      return;
    }
    try {
      this.heat = await getHeat(this.minutes.value);
      this.#drawHeat();
    } catch {
      // The stream's status already tells when the server is away; keep the last heat.
    }
  }

  #drawHeat() {
    const layer = this.map.layers.heat;
    layer.replaceChildren();
    if (!this.heat?.cells.length || !this.map.transform || !this.map.scene) return;
    const max = Math.max(...this.heat.cells.map((c) => c.count));
    const half = this.heat.cell_degrees / 2;
    for (const c of this.heat.cells) {
      const a = this.map.project(c.latitude + half, c.longitude - half);
      const b = this.map.project(c.latitude - half, c.longitude + half);
      const w = Math.max(b.x - a.x, 6);
      const d = Math.max(b.y - a.y, 6);
      layer.append(s('rect', {
        class: 'heat-cell', x: (a.x + b.x - w) / 2, y: (a.y + b.y - d) / 2, width: w, height: d,
        opacity: (0.2 + 0.6 * (c.count / max)).toFixed(2), 'data-count': c.count,
      }));
    }
  }

  async #refreshZones() {
    const minutes = this.minutes.value;
    let zones = null;
    try {
      zones = this.venue ? await getZones(minutes) : null;
    } catch {
      return; // the stream's status already tells when the server is away
    }
    const note = $('zones-note');
    const list = $('zones-list');
    if (!zones) {
      note.textContent = 'No venue plan: no rooms to count people in.';
      list.replaceChildren();
      return;
    }
    const span = minutes === '1' ? 'minute' : minutes === '60' ? 'hour' : minutes === '1440' ? 'day' : `${minutes} minutes`;
    note.textContent = `Distinct people in the last ${span}; rooms with fewer than ${zones.k} are left out.`;
    list.replaceChildren(...zones.zones.map((z) => h('li', { 'data-zone': z.name },
      h('span', { text: z.name }), ' ', h('strong', { text: formatNumber(z.count) }))));
  }

  #rate(r) {
    this.total = r.total;
    this.rates.push(r.pings_per_second);
    if (this.rates.length > RATE_SAMPLES) this.rates.shift();
    $('rate-value').textContent = formatNumber(r.pings_per_second);
    $('rate-total').textContent = `(${formatNumber(r.total)} since start)`;
    const chart = $('rate-chart');
    const peak = Math.max(1, ...this.rates);
    const w = 240 / RATE_SAMPLES;
    const offset = RATE_SAMPLES - this.rates.length; // newest on the right
    chart.replaceChildren(s('line', { class: 'rate-axis', x1: 0, x2: 240, y1: 59.5, y2: 59.5 }),
      ...this.rates.map((v, i) => {
        const hgt = (v / peak) * 56;
        return s('rect', { class: 'rate-bar', x: (offset + i) * w + 0.5, y: 60 - hgt, width: w - 1, height: hgt });
      }));
    $('rate-peak').textContent = `Peak ${formatNumber(Math.max(...this.rates))} pings/s in the last ${this.rates.length} s.`;
    chart.setAttribute('aria-label', `Ingest rate over the last ${this.rates.length} seconds: now ${r.pings_per_second} pings per second, peak ${Math.max(...this.rates)}.`);
    // Markers age from "recent" to "earlier" with no ping; heat follows the flow of pings.
    this.#placeMarkers();
    const since = Date.now() - (this.heatAt ?? 0);
    if ((this.total !== this.heatTotal && since > HEAT_MIN_INTERVAL) || since > HEAT_MAX_INTERVAL) this.#refreshHeat();
  }

  #renderTable() {
    $('positions-count').textContent = formatNumber(this.dots.length);
    if (!$('positions-details').open) return;
    // At most once a second: a busy venue sends many maps.
    if (this.tableTimer) {
      this.tableDirty = true;
      return;
    }
    this.tableTimer = setTimeout(() => {
      this.tableTimer = null;
      if (this.tableDirty) this.#renderTable();
      this.tableDirty = false;
    }, 1000);
    const scene = this.map.scene;
    // Named first, then the anonymous in the server's order (by position: it says nothing of who).
    const dots = [...this.dots].sort((a, b) => (a.name === undefined) - (b.name === undefined));
    const rows = dots.map((d) => {
      let where = formatLatLon(d.latitude, d.longitude);
      if (scene?.venue) {
        const { x, y } = scene.toLocal(d.latitude, d.longitude);
        const area = areaAt(scene.venue, x, y);
        where = area ? `${area.name} (${Math.round(x)} m E, ${Math.round(y)} m N)` : `${where} (off the plan)`;
      }
      const row = h('tr', {},
        h('th', { scope: 'row', text: d.name ?? 'Someone' }),
        h('td', {}, h('time', { datetime: d.time, text: formatTime(d.time) })),
        h('td', { text: where }));
      if (d.person_id !== undefined) row.dataset.person = d.person_id;
      return row;
    });
    $('positions-body').replaceChildren(...rows);
  }
}
