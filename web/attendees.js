// Attendees: a searchable list; for the one picked, whom they met in a window, grouped by person,
// and a map of where. The window and parameters live in the URL (#/attendees/ID?start=...), so a
// view can be bookmarked and the browser's back button works.

import {
  ApiError, ME, getContacts, getEvidence, getReveals, getSummary, getVenue, knownPerson, loadPeople, setHidden, setReveal,
} from './api.js';
import {
  formatDate, formatDuration, formatLatLon, formatNumber, formatPeriodEnd, formatShortTime, formatTime, fromLocalDate, h,
  personName, timeElement, toLocalDate, zoneName,
} from './format.js';
import { MapView, areaAt, s, sceneFor } from './map.js';

const $ = (id) => document.getElementById(id);
const DATE = /^\d{4}-\d{2}-\d{2}$/;
// Every meeting is listed by default (min. 0 s); the server's own default is 120 s.
const DEFAULTS = { distance: '5', interp: '300', min: '0' };
const ROWS_SHOWN = 50; // encounters listed per person; the rest are counted

export class Attendees {
  /** `self`: the caller's own meetings only (an attendee), with no directory to pick from. */
  constructor({ self = false } = {}) {
    this.self = self;
    this.search = $('search');
    this.list = $('people');
    this.listStatus = $('list-status');
    this.form = $('window-form');
    this.status = $('meetings-status');
    this.map = new MapView($('meetings-figure'), 'Map of meetings');
    this.map.onLayout = () => this.#drawMeetings();
    this.seq = 0; // the latest request wins; answers to older ones are dropped
    this.current = null; // { id, summary }
    this.result = null; // { contacts, params, venue }
    this.selected = null;

    this.search.addEventListener('input', () => this.#filter());
    this.search.addEventListener('keydown', (e) => this.#searchKey(e));
    this.list.addEventListener('keydown', (e) => this.#listKey(e));
    this.list.addEventListener('click', (e) => {
      if (e.target.closest('a')) this.focusDetail = true;
    });
    $('list-error').querySelector('.retry').addEventListener('click', () => this.loadList());
    this.form.addEventListener('submit', (e) => this.#submit(e));
    $('f-reset').addEventListener('click', () => this.#go(this.current.id, null));
    $('contacts').addEventListener('click', (e) => {
      const button = e.target.closest('button.encounter');
      if (button) this.#select(button.dataset.key === this.selected ? null : button.dataset.key);
      const action = e.target.closest('button[data-action]');
      if (action) this.#act(action);
    });
    $('requests').addEventListener('click', (e) => {
      const action = e.target.closest('button[data-action]');
      if (action) this.#act(action);
    });
    if (self) {
      const title = $('attendees-title');
      title.textContent = 'My meetings';
      $('attendees-view').querySelector('.detail').prepend(title);
      $('people-panel').remove();
      $('attendees-view').classList.add('self');
    } else {
      this.loadList();
    }
  }

  async loadList() {
    $('list-error').hidden = true;
    this.listStatus.textContent = 'Loading attendees…';
    this.list.setAttribute('aria-busy', 'true');
    try {
      const persons = await loadPeople();
      this.list.replaceChildren(...persons.map((p) => h('li', { 'data-search': `${personName(p)} ${p.company_name}`.toLowerCase() },
        h('a', { href: `#/attendees/${p.id}`, 'data-id': p.id },
          h('span', { class: 'name', text: personName(p) }),
          h('span', { class: 'company', text: p.company_name })))));
      this.total = persons.length;
      this.#filter();
      this.#markCurrent();
    } catch (error) {
      this.listStatus.textContent = '';
      $('list-error').querySelector('.error-text').textContent = error.message;
      $('list-error').hidden = false;
    } finally {
      this.list.removeAttribute('aria-busy');
    }
  }

  #filter() {
    if (this.total === undefined) return;
    const query = this.search.value.trim();
    const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const li of this.list.children) {
      li.hidden = !terms.every((t) => li.dataset.search.includes(t));
      if (!li.hidden) shown += 1;
    }
    if (this.total === 0) this.listStatus.textContent = 'No attendees yet.';
    else if (!terms.length) this.listStatus.textContent = `${formatNumber(this.total)} attendees.`;
    else if (!shown) this.listStatus.textContent = `No attendee matches “${query}”.`;
    else this.listStatus.textContent = `${formatNumber(shown)} of ${formatNumber(this.total)} attendees match “${query}”.`;
  }

  #links() {
    return [...this.list.querySelectorAll('li:not([hidden]) > a')];
  }

  // Down arrow goes from the search box into the list; Enter opens the first match.
  #searchKey(e) {
    const links = this.#links();
    if (e.key === 'ArrowDown' && links.length) {
      e.preventDefault();
      links[0].focus();
    } else if (e.key === 'Enter' && links.length) {
      e.preventDefault();
      links[0].click();
    }
  }

  #listKey(e) {
    const links = this.#links();
    const i = links.indexOf(document.activeElement);
    if (i < 0) return;
    const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: links.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    if (to < 0) this.search.focus();
    else links[Math.min(to, links.length - 1)].focus();
  }

  #markCurrent() {
    if (this.self) return;
    for (const a of this.list.querySelectorAll('a')) {
      if (a.dataset.id === this.shownId) a.setAttribute('aria-current', 'true');
      else a.removeAttribute('aria-current');
    }
  }

  /** Shows the attendee `id` (a string from the URL, or null for none) with URL parameters. */
  async show(id, query) {
    this.shownId = id;
    this.#markCurrent();
    const seq = ++this.seq;
    const focus = this.focusDetail;
    this.focusDetail = false;
    $('detail-error').hidden = true;
    $('detail-empty').hidden = id !== null;
    if (id === null) {
      $('person').hidden = true;
      return;
    }
    if (id !== ME && !/^[1-9]\d{0,15}$/.test(id)) {
      this.#fail(seq, new ApiError(`There is no attendee “${id}”.`, 404));
      return;
    }

    // A new window for the same attendee reuses their summary; opening them afresh reads it again.
    let summary = this.current?.id === id && query?.size ? this.current.summary : null;
    if (!summary) {
      const known = knownPerson(Number(id));
      $('person').hidden = false;
      $('person-name').textContent = known ? personName(known) : id === ME ? 'You' : `Attendee ${id}`;
      // Focus follows the heading as soon as it shows, not only once the summary is read.
      if (focus) $('person-name').focus();
      $('person-company').textContent = known?.company_name ?? '';
      $('person-seen').textContent = '';
      $('results').hidden = true;
      this.status.textContent = 'Loading…';
      try {
        summary = await getSummary(id);
      } catch (error) {
        this.#fail(seq, error, () => this.show(id, query));
        return;
      }
      if (seq !== this.seq) return;
      this.current = { id, summary };
    }

    const name = personName(summary.person);
    document.title = `${name} · UdaConnect`;
    $('person').hidden = false;
    $('person-name').textContent = name;
    $('person-company').textContent = summary.person.company_name;
    const seen = $('person-seen');
    if (summary.first_seen) {
      seen.replaceChildren(`${formatNumber(summary.pings)} ${summary.pings === 1 ? 'ping' : 'pings'}, from `,
        timeElement(summary.first_seen), ' to ', timeElement(summary.last_seen), '.');
    } else {
      seen.textContent = 'No pings yet.';
    }
    if (focus) $('person-name').focus();

    const params = this.#params(query, summary);
    for (const [k, v] of Object.entries(params)) this.form.elements[k].value = v;
    this.#clearFormError();

    if (!summary.pings) {
      $('results').hidden = true;
      this.status.textContent = `${name} has sent no pings yet, so there are no meetings to show.`;
      return;
    }
    this.status.textContent = `Loading meetings of ${name}…`;
    $('person').setAttribute('aria-busy', 'true');
    let contacts;
    let venue;
    const windowParams = {
      start: fromLocalDate(params.start).toISOString(),
      end: fromLocalDate(params.end, 1).toISOString(), // the "to" date is included whole
      distance: params.distance,
      max_interpolation: params.interp,
      min_duration: params.min,
    };
    this.query = windowParams; // the window a contact's reveal, hiding and evidence are asked in
    try {
      [contacts, venue] = await Promise.all([
        getContacts(id, windowParams),
        getVenue().catch(() => null), // a plan is a nicety: draw without one
      ]);
    } catch (error) {
      this.#fail(seq, error, () => this.show(id, query), true);
      return;
    } finally {
      if (seq === this.seq) $('person').removeAttribute('aria-busy');
    }
    if (seq !== this.seq) return;
    await this.#showRequests();
    this.#showContacts(summary, contacts, params, venue);
  }

  #params(query, summary) {
    const first = summary.first_seen ? toLocalDate(summary.first_seen) : toLocalDate(new Date().toISOString());
    const last = summary.last_seen ? toLocalDate(summary.last_seen) : first;
    const number = (k) => (query?.get(k) && Number.isFinite(Number(query.get(k))) ? query.get(k) : DEFAULTS[k]);
    const date = (k, fallback) => (DATE.test(query?.get(k) ?? '') ? query.get(k) : fallback);
    return { start: date('start', first), end: date('end', last), distance: number('distance'), interp: number('interp'), min: number('min') };
  }

  // An error replaces the attendee when it could not be read, else it stands above the form, so
  // the parameters that caused it can be changed.
  #fail(seq, error, retry, keepPerson = false) {
    if (seq !== this.seq) return;
    const box = $('detail-error');
    const refused = error.status === 403;
    box.querySelector('.error-title').textContent = refused ? (keepPerson ? 'Their meetings are private.' : 'This attendee is private.')
      : keepPerson ? 'Could not load the meetings.' : 'Could not load this attendee.';
    // A refusal is the policy, not a failure: say who may see them, and offer no retry.
    box.querySelector('.error-text').textContent = refused
      ? `Whom an attendee met is shown to that attendee and to administrators only. (${error.message})` : error.message;
    const button = box.querySelector('.retry');
    button.hidden = !retry || error.status === 404 || refused;
    button.onclick = retry ?? null;
    box.hidden = false;
    $('person').hidden = !keepPerson;
    $('results').hidden = true;
    this.status.textContent = '';
    if (!keepPerson) {
      this.current = null;
      document.title = 'UdaConnect';
    }
  }

  #submit(e) {
    e.preventDefault();
    this.#clearFormError();
    const els = this.form.elements;
    const invalid = [...this.form.querySelectorAll('input')].find((el) => !el.checkValidity());
    let message = null;
    let at = invalid;
    if (invalid) {
      const label = this.form.querySelector(`label[for="${invalid.id}"]`).textContent;
      message = `${label}: ${invalid.validationMessage}`;
    } else if (els.end.value < els.start.value) {
      message = '“To” must not be before “From”.';
      at = els.end;
    }
    if (message) {
      $('form-error').textContent = message;
      $('form-error').hidden = false;
      at.setAttribute('aria-invalid', 'true');
      at.setAttribute('aria-describedby', 'form-error');
      at.focus();
      return;
    }
    const params = new URLSearchParams();
    for (const k of ['start', 'end', 'distance', 'interp', 'min']) params.set(k, els[k].value);
    this.#go(this.current.id, params);
  }

  #clearFormError() {
    $('form-error').hidden = true;
    for (const el of this.form.querySelectorAll('[aria-invalid]')) {
      el.removeAttribute('aria-invalid');
      el.removeAttribute('aria-describedby');
    }
  }

  #go(id, params) {
    const hash = `#/attendees/${id}${params ? `?${params}` : ''}`;
    if (location.hash === hash) this.show(id, params);
    else location.hash = hash;
  }

  #showContacts(summary, contacts, params, venue) {
    const name = personName(summary.person);
    const range = params.start === params.end ? `on ${formatDate(params.start)}`
      : `between ${formatDate(params.start)} and ${formatDate(params.end)}`;
    this.selected = null;
    $('meetings-selected').textContent = '';
    if (!contacts.length) {
      this.result = null;
      $('results').hidden = true;
      this.status.textContent = `No meetings in range: ${name} met nobody ${range} within ${params.distance} m `
        + `(tracks joined across gaps up to ${params.interp} s, at least ${params.min} s together). Try a wider window or a larger distance.`;
      return;
    }
    const encounters = contacts.reduce((n, c) => n + c.encounter_count, 0);
    this.status.textContent = `${name} met ${formatNumber(contacts.length)} ${contacts.length === 1 ? 'person' : 'people'} ${range}: `
      + `${formatNumber(encounters)} ${encounters === 1 ? 'encounter' : 'encounters'} in all.`;

    const scene = sceneFor(venue, contacts.flatMap((c) => c.encounters), { fit: 'points', minExtent: 40 });
    this.result = { contacts, venue: scene.venue, scene };
    $('contacts').replaceChildren(...contacts.map((c, i) => this.#contactItem(c, i, scene)));
    $('results').hidden = false;

    const places = new Set(contacts.flatMap((c) => c.encounters.map(spotKey))).size;
    this.map.setLabel(`Map of where ${name} met people: ${encounters} ${encounters === 1 ? 'encounter' : 'encounters'} at ${places} `
      + `${places === 1 ? 'place' : 'places'}. The list of meetings gives each one.`);
    this.frameNote = scene.venue ? `Part of the plan of ${scene.venue.name} around the meetings, north up.`
      : `${venue ? 'Off the venue plan' : 'No venue plan'}: the view is fitted to the meeting places, north up.`;
    this.map.setScene(scene);
  }

  #contactItem(c, i, scene) {
    const name = contactName(c);
    const rows = c.encounters.slice(0, ROWS_SHOWN).map((e, j) => {
      const key = `${i}-${j}`;
      return h('tr', {},
        h('td', {}, h('button', { type: 'button', class: 'encounter', 'data-key': key, 'aria-pressed': 'false' },
          timeElement(e.start, formatShortTime(e.start)),
          ...(e.end !== e.start ? [' – ', timeElement(e.end, formatPeriodEnd(e.start, e.end))] : []))),
        h('td', { text: formatDuration(e.duration_seconds) }),
        h('td', { text: this.#where(e, scene) }));
    });
    const more = c.encounters.length - ROWS_SHOWN;
    return h('li', { class: c.anonymous ? 'contact anonymous' : 'contact', 'data-person': c.person?.id ?? '' },
      h('div', { class: 'contact-head' }, h('h4', { text: name }),
        h('span', { class: 'company', text: c.person ? c.person.company_name : 'has not chosen to show their name' })),
      c.email ? h('p', { class: 'contact-email' }, 'E-mail: ', h('a', { href: `mailto:${c.email}`, text: c.email })) : null,
      this.self ? this.#contactActions(c, name) : null,
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', { text: 'Encounters' }), h('dd', { class: 'encounter-count', text: formatNumber(c.encounter_count) })),
        h('div', {}, h('dt', { text: 'Time together' }), h('dd', { text: formatDuration(c.duration_seconds) })),
        h('div', {}, h('dt', { text: 'First met' }), h('dd', {}, timeElement(c.first_met))),
        h('div', {}, h('dt', { text: 'Last met' }), h('dd', {}, timeElement(c.last_met)))),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'encounters' },
          h('caption', { class: 'visually-hidden', text: `Encounters with ${name}; a button shows one on the map` }),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: `When (${zoneName()})` }),
            h('th', { scope: 'col', text: 'How long' }),
            h('th', { scope: 'col', text: 'Where' }))),
          h('tbody', {}, rows))),
      more > 0 ? h('p', { class: 'muted', text: `… and ${formatNumber(more)} more: narrow the window to list them.` }) : null);
  }

  // What the caller may do about one of their contacts; a contact is named in the path by its
  // id where the caller sees who it is, else by the handle the answer gave.
  #contactActions(c, name) {
    const ref = c.person?.id ?? c.handle;
    const asked = this.asked?.has(String(ref));
    return h('div', { class: 'contact-actions' },
      h('button', { type: 'button', 'data-action': asked ? 'withdraw' : 'reveal', 'data-ref': ref,
        text: asked ? 'Withdraw' : 'Ask to exchange e-mails', 'aria-label': `${asked ? 'Withdraw the request to' : 'Ask to exchange e-mails with'} ${name}` }),
      h('button', { type: 'button', 'data-action': 'hide', 'data-ref': ref, text: 'Hide', 'aria-label': `Hide ${name}` }),
      h('button', { type: 'button', 'data-action': 'evidence', 'data-ref': ref, text: 'Why this match?', 'aria-label': `Why this match? (${name})` }),
      h('div', { class: 'evidence', 'data-for': ref, hidden: true }));
  }

  async #act(button) {
    const ref = button.dataset.ref;
    const status = $('reveal-status');
    try {
      if (button.dataset.action === 'evidence') {
        const box = $('contacts').querySelector(`.evidence[data-for="${CSS.escape(ref)}"]`);
        const ev = await getEvidence(ref, this.query);
        box.replaceChildren(h('p', { text: `${ev.pings.length}${ev.more ? '+' : ''} of your pings were within ${ev.distance_m} m:` }),
          h('ul', {}, ev.pings.slice(0, 20).map((p) => h('li', {}, timeElement(p.time),
            ` ${formatLatLon(p.latitude, p.longitude)}: ${p.distance_m.toFixed(1)} m apart, ${p.time_gap_seconds} s from their nearest ping`))));
        box.hidden = false;
        return;
      }
      if (button.dataset.action === 'hide') await setHidden(ref, true, this.query);
      else if (button.dataset.action === 'unhide') await setHidden(ref, false, this.query);
      else await setReveal(ref, button.dataset.action === 'reveal', this.query);
      status.textContent = { reveal: 'Asked. You see their e-mail once they ask too.', withdraw: 'Withdrawn.',
        hide: 'Hidden.', unhide: 'Shown again.' }[button.dataset.action];
      this.show(this.current.id, new URLSearchParams(location.hash.split('?')[1] ?? ''));
    } catch (error) {
      status.textContent = error.message;
    }
  }

  // The requests to exchange e-mails made to the caller, to answer, and the contacts they hid.
  async #showRequests() {
    const list = $('requests');
    if (!this.self) {
      list.hidden = true;
      return;
    }
    let reveals;
    try {
      reveals = await getReveals();
    } catch (error) {
      $('reveal-status').textContent = error.message;
      return;
    }
    this.asked = new Set(reveals.asked.map((r) => String(r.person?.id ?? r.handle)));
    for (const r of reveals.asked) this.asked.add(r.handle);
    const who = (r) => (r.person ? personName(r.person) : 'Someone you met');
    list.replaceChildren(
      h('h3', { text: 'Requests to exchange e-mails' }),
      reveals.asking_me.length ? h('ul', {}, reveals.asking_me.map((r) => h('li', { class: 'request' },
        `${who(r)} asks to exchange e-mails. `,
        this.asked.has(r.handle) ? h('span', { text: 'You asked too.' })
          : h('button', { type: 'button', 'data-action': 'reveal', 'data-ref': r.handle, text: 'Ask to exchange e-mails' }))))
        : h('p', { class: 'muted', text: 'No one asks you at the moment.' }),
      ...(reveals.hidden.length ? [h('ul', {}, reveals.hidden.map((r) => h('li', { class: 'hidden-contact' },
        `${who(r)} is hidden${r.dispute ? ' (disputed)' : ''}. `,
        h('button', { type: 'button', 'data-action': 'unhide', 'data-ref': r.handle, text: 'Show again' }))))] : []));
    list.hidden = false;
  }

  #where(e, scene) {
    const at = formatLatLon(e.latitude, e.longitude);
    if (!scene.venue) return at;
    const { x, y } = scene.toLocal(e.latitude, e.longitude);
    const area = areaAt(scene.venue, x, y);
    return area ? `${area.name} (${at})` : at;
  }

  #encounter(key) {
    const [i, j] = key.split('-').map(Number);
    const contact = this.result.contacts[i];
    return { contact, encounter: contact.encounters[j] };
  }

  #select(key) {
    this.selected = key;
    for (const b of $('contacts').querySelectorAll('button.encounter')) b.setAttribute('aria-pressed', String(b.dataset.key === key));
    if (key === null) {
      $('meetings-selected').textContent = '';
    } else {
      const { contact, encounter: e } = this.#encounter(key);
      const when = e.end !== e.start ? `${formatTime(e.start)} to ${formatTime(e.end)}` : formatTime(e.start);
      $('meetings-selected').textContent = `Highlighted: ${contactName(contact)}, ${when} (${formatDuration(e.duration_seconds)}), at ${this.#where(e, this.result.scene)}.`;
    }
    this.#drawMeetings();
  }

  // Encounters at the same spot share one marker, numbered when there are several.
  #drawMeetings() {
    const { marks, top } = this.map.layers;
    marks.replaceChildren();
    top.replaceChildren();
    if (!this.result || !this.map.transform) return;
    const spots = new Map();
    this.result.contacts.forEach((c, i) => c.encounters.forEach((e, j) => {
      const k = spotKey(e);
      if (!spots.has(k)) spots.set(k, { e, keys: [] });
      spots.get(k).keys.push(`${i}-${j}`);
    }));
    let off = 0;
    for (const [k, { e, keys }] of spots) {
      const p = this.map.project(e.latitude, e.longitude);
      if (!this.map.visible(p)) off += 1;
      const r = 7 + Math.min(6, 2 * Math.log2(keys.length));
      const g = s('g', { class: 'spot', 'data-spot': k, transform: `translate(${p.x} ${p.y})` }, s('circle', { r }));
      if (keys.length > 1) g.append(s('text', { y: 4, 'text-anchor': 'middle' }, String(keys.length)));
      marks.append(g);
    }
    $('meetings-frame').textContent = off
      ? `${this.frameNote} ${off} meeting ${off === 1 ? 'place lies' : 'places lie'} off the plan (see the list).` : this.frameNote;
    if (this.selected) {
      const { contact, encounter: e } = this.#encounter(this.selected);
      const p = this.map.project(e.latitude, e.longitude);
      const text = `${contactName(contact)} · ${formatTime(e.start)}`;
      const label = s('text', { class: 'highlight-text', y: -22, 'text-anchor': 'middle' }, text);
      const g = s('g', { class: 'highlight', 'data-key': this.selected, transform: `translate(${p.x} ${p.y})` },
        s('circle', { class: 'highlight-ring', r: 16 }), label);
      top.append(g);
      // Keep the label inside the map: shift it sideways when it would cross an edge.
      const box = label.getBBox();
      const shift = Math.max(4 - (p.x + box.x), Math.min(0, this.map.size.width - 4 - (p.x + box.x + box.width)));
      label.setAttribute('x', shift);
      if (p.y + box.y < 4) label.setAttribute('y', 34);
      const b = label.getBBox();
      g.insertBefore(s('rect', { class: 'highlight-bg', x: b.x - 5, y: b.y - 3, width: b.width + 10, height: b.height + 6, rx: 4 }), label);
    }
  }
}

// Someone who has not let the people they met see them comes without a person: the meeting only.
const contactName = (c) => (c.person ? personName(c.person) : 'Someone');

const spotKey = (e) => `${e.latitude.toFixed(6)},${e.longitude.toFixed(6)}`;
