// How times, durations, names and places read on the page. Times are shown in the browser's time
// zone, with the zone's name, since attendees compare them with their own agenda.

const timeFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});
const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const shortFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const numberFormat = new Intl.NumberFormat();

export const personName = (p) => `${p.first_name} ${p.last_name}`.trim() || `Person ${p.id}`;
export const formatTime = (iso) => timeFormat.format(new Date(iso));
/** Without the zone's name, for columns whose heading names it (see zoneName). */
export const formatShortTime = (iso) => shortFormat.format(new Date(iso));
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
/** The end of a period as the page shows it after its start: the time of day alone when the
 * period ends on the day it starts. */
export const formatPeriodEnd = (startIso, endIso) => (toLocalDate(startIso) === toLocalDate(endIso)
  ? clockFormat.format(new Date(endIso)) : formatShortTime(endIso));
/** The short name of the browser's time zone, such as "UTC" or "CEST", now. */
export const zoneName = () => timeFormat.formatToParts(new Date()).find((p) => p.type === 'timeZoneName')?.value ?? '';
export const formatNumber = (n) => numberFormat.format(n);

/** A local calendar date (YYYY-MM-DD) as a readable date. */
export const formatDate = (ymd) => dateFormat.format(fromLocalDate(ymd));

export function formatDuration(seconds) {
  if (seconds < 1) return 'an instant';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

export const formatLatLon = (lat, lon) => `${lat.toFixed(5)}, ${lon.toFixed(5)}`;

const pad = (n) => String(n).padStart(2, '0');

/** The local calendar date (YYYY-MM-DD) of an instant: what a date input shows. */
export function toLocalDate(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Local midnight at the start of a YYYY-MM-DD date, plus `days`. */
export function fromLocalDate(ymd, days = 0) {
  const [y, m, d] = ymd.split('-').map(Number);
  return new Date(y, m - 1, d + days);
}

/** A <time> element showing an instant. */
export function timeElement(iso, text = formatTime(iso)) {
  const t = document.createElement('time');
  t.dateTime = iso;
  t.textContent = text;
  return t;
}

/** Creates an HTML element with attributes and children (strings become text). */
export function h(name, attrs = {}, ...children) {
  const el = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}
