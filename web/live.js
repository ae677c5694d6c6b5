// The venue live: everyone's last ping on the plan, moved as the server pushes stored pings
// (server-sent events), a heat layer of recent pings and the ingest rate.

import { getHeat, getPositions, getVenue, knownPerson, liveStream, loadPeople } from './api.js';
import { formatLatLon, formatNumber, formatTime, h, personName } from './format.js';
import { MapView, areaAt, s, sameScene, sceneFor } from './map.js';

const $ = (id) => document.getElementById(id);
const RATE_SAMPLES = 60; // seconds of ingest rate in the chart
const LABEL_LIMIT = 15; // name labels on the map only while they do not crowd it
const HEAT_MIN_INTERVAL = 3000; // ms between heat refreshes while pings flow
const HEAT_MAX_INTERVAL = 30000; // ms: refresh anyway, so old pings fade out
const NAMES_INTERVAL = 10000; // ms between reloads of the attendee list for unknown ids

export class Live {
  constructor() {
    this.positions = new Map(); // person id -> latest location (by ping time)
    this.markers = new Map(); // person id -> SVG group
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
    stream.addEventListener('positions', (e) => this.#merge(JSON.parse(e.data)));
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
      const [venue, positions] = await Promise.all([getVenue(), getPositions()]);
      this.venue = venue;
      this.#merge(positions);
      this.#refreshHeat();
      loadPeople().then(() => this.#render(), () => {}); // names only; the map works without them
    } catch (error) {
      this.#setError(error.message);
    }
  }

  #merge(locations) {
    for (const l of locations) {
      const old = this.positions.get(l.person_id);
      if (!old || Date.parse(l.creation_time) >= Date.parse(old.creation_time)) this.positions.set(l.person_id, l);
    }
    // Many batches can arrive between two frames: draw once per frame.
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = null; this.#render(); });
  }

  #render() {
    const all = [...this.positions.values()];
    $('live-empty').hidden = all.length > 0;
    const scene = sceneFor(this.venue ?? null, all); // null: nothing to draw yet
    if (scene && !sameScene(scene, this.map.scene)) this.map.setScene(scene); // places the markers
    else this.#placeMarkers();
    const name = this.map.scene?.venue?.name;
    this.map.setLabel(name ? `Live map of ${name}: ${all.length} attendees. The table below lists their positions.`
      : `Live map of ${all.length} attendees. The table below lists their positions.`);
    this.#renderTable();
  }

  #name(id) {
    const p = knownPerson(id);
    if (p) return personName(p);
    // Someone who registered after the list was read: read it again, now and then.
    if (!this.namesAt || Date.now() - this.namesAt > NAMES_INTERVAL) {
      this.namesAt = Date.now();
      loadPeople(true).then(() => this.#render(), () => {});
    }
    return `Person ${id}`;
  }

  #recent(l) {
    return Date.now() - Date.parse(l.creation_time) <= Number(this.minutes.value) * 60000;
  }

  #placeMarkers() {
    if (!this.map.transform || !this.map.scene) return;
    const labels = this.positions.size <= LABEL_LIMIT;
    const r = this.map.size.width < 500 ? 5 : 7; // smaller dots on a phone, where the crowd is denser
    let off = 0;
    for (const [id, l] of this.positions) {
      let g = this.markers.get(id);
      if (!g) {
        g = s('g', { class: 'marker', 'data-person': id }, s('circle', { class: 'marker-dot', r: 7 }), s('title'));
        this.map.layers.marks.append(g);
        this.markers.set(id, g);
        // Animate moves, not the first appearance.
        requestAnimationFrame(() => requestAnimationFrame(() => g.classList.add('placed')));
      }
      const p = this.map.project(l.latitude, l.longitude);
      if (!this.map.visible(p)) off += 1;
      g.style.transform = `translate(${p.x.toFixed(1)}px, ${p.y.toFixed(1)}px)`;
      g.dataset.location = l.id;
      g.dataset.time = l.creation_time;
      g.firstChild.setAttribute('class', `marker-dot ${this.#recent(l) ? 'fresh' : 'stale'}`);
      g.firstChild.setAttribute('r', r);
      const name = this.#name(id);
      g.querySelector('title').textContent = `${name}, ${formatTime(l.creation_time)}`;
      let label = g.querySelector('text');
      if (labels && !label) g.append(label = s('text', { x: 10, y: 4 }));
      if (!labels) label?.remove();
      else label.textContent = name;
    }
    const scene = this.map.scene;
    let note = scene.venue ? `Plan of ${scene.venue.name}, north up.` : 'No venue plan: the view is fitted to the positions, north up.';
    if (off) note += ` ${off} ${off === 1 ? 'attendee is' : 'attendees are'} off the plan (see the table).`;
    $('live-frame').textContent = note;
  }

  async #refreshHeat() {
    this.heatAt = Date.now();
    this.heatTotal = this.total;
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
    $('positions-count').textContent = formatNumber(this.positions.size);
    if (!$('positions-details').open) return;
    // At most once a second: a busy venue sends many batches.
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
    const rows = [...this.positions.values()].sort((a, b) => a.person_id - b.person_id).map((l) => {
      let where = formatLatLon(l.latitude, l.longitude);
      if (scene?.venue) {
        const { x, y } = scene.toLocal(l.latitude, l.longitude);
        const area = areaAt(scene.venue, x, y);
        where = area ? `${area.name} (${Math.round(x)} m E, ${Math.round(y)} m N)` : `${where} (off the plan)`;
      }
      return h('tr', { 'data-person': l.person_id },
        h('th', { scope: 'row', text: this.#name(l.person_id) }),
        h('td', {}, h('time', { datetime: l.creation_time, text: formatTime(l.creation_time) })),
        h('td', { text: where }));
    });
    $('positions-body').replaceChildren(...rows);
  }
}
