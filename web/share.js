// "Share my location": while the switch is on, the browser's position (watchPosition, high
// accuracy) becomes a ping when it moves MIN_MOVE_M or every INTERVAL_S. Every ping is put in
// an IndexedDB queue first and sent from there (POST /api/me/locations, with the session), so
// pings made offline, or whose answer was lost, are sent later. A ping carries its fix time and
// the server keeps one ping per fix second, so a resent ping is never stored twice.

import { postMyLocations } from './api.js';
import { formatTime } from './format.js';

export const INTERVAL_S = 30;
export const MIN_MOVE_M = 10;
// As many as one request takes (the server's bound).
const BATCH = 100;
// How soon a failed send is tried again, besides the browser saying it is back online.
const RETRY_MS = 5000;
const DB_NAME = 'udaconnect-share';
const QUEUE = 'pings';
// Whose sharing was on, so a reload goes on sharing for them (and for no one else).
const ON_KEY = 'udaconnect-share-on';

const $ = (id) => document.getElementById(id);
// What a ping carries beside its place and time where the browser gave it: metres, metres,
// metres per second, degrees (the Geolocation API's units, which the server keeps).
const EXTRAS = ['accuracy', 'altitude', 'speed', 'heading'];

/** A queued ping as sent: its extras only where known (pings queued before had none). */
function sent(queued) {
  const { latitude, longitude, creation_time } = queued;
  const ping = { latitude, longitude, creation_time };
  for (const key of EXTRAS) if (Number.isFinite(queued[key])) ping[key] = queued[key];
  return ping;
}

/** Metres between two positions (haversine: exact enough at a venue's scale). */
function metres(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.latitude - a.latitude) * rad;
  const dLon = (b.longitude - a.longitude) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.latitude * rad) * Math.cos(b.latitude * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.sqrt(s));
}

/** An IndexedDB request or transaction as a promise. */
function done(request) {
  return new Promise((resolve, reject) => {
    if ('oncomplete' in request) {
      request.oncomplete = () => resolve();
      request.onabort = request.onerror = () => reject(request.error);
    } else {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    }
  });
}

/** The pings not yet sent, oldest first, kept per person in IndexedDB. */
class Queue {
  constructor() {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(QUEUE, { keyPath: 'key', autoIncrement: true })
      .createIndex('person', 'person');
    this.db = done(open);
  }

  async #store(mode) {
    const tx = (await this.db).transaction(QUEUE, mode);
    return { tx, store: tx.objectStore(QUEUE) };
  }

  async add(ping) {
    const { tx, store } = await this.#store('readwrite');
    store.add(ping);
    await done(tx);
  }

  /** The oldest `n` pings of `person`. */
  async oldest(person, n) {
    const { store } = await this.#store('readonly');
    return done(store.index('person').getAll(IDBKeyRange.only(person), n));
  }

  async count(person) {
    const { store } = await this.#store('readonly');
    return done(store.index('person').count(IDBKeyRange.only(person)));
  }

  async remove(keys) {
    const { tx, store } = await this.#store('readwrite');
    for (const key of keys) store.delete(key);
    await done(tx);
  }

  /** Forgets every ping of `person`. */
  async clear(person) {
    await this.remove(await this.oldest(person, undefined).then((all) => all.map((p) => p.key)));
  }
}

const POSITION_ERRORS = {
  1: 'Location is blocked for this page. Allow it in the browser\'s site settings, then turn sharing on again.',
  2: 'Your position is unavailable right now (no satellite or network fix). Sharing stays on and tries again.',
  3: 'Finding your position is taking long. Sharing stays on and tries again.',
};

export class Share {
  /** `person`: the signed-in attendee's person id; `onSignedOut`: the server says nobody is signed in. */
  constructor(person, { onSignedOut = () => {} } = {}) {
    this.person = person;
    this.onSignedOut = onSignedOut;
    this.queue = new Queue();
    this.watch = null;
    this.since = null;
    this.lastFix = null; // the latest position the browser gave
    this.lastQueued = null; // { latitude, longitude, at } of the latest ping queued
    this.sending = null;
    this.retry = null;
    this.toggle = $('share-toggle');
    this.toggle.addEventListener('change', () => (this.toggle.checked ? this.start() : this.stop()));
    this.online = () => this.flush();
    window.addEventListener('online', this.online);
    $('share-interval').textContent = `every ${INTERVAL_S} s, and when you move ${MIN_MOVE_M} m or more`;
    $('share-panel').hidden = false;
    this.#show();
    // Pings queued before (offline when the page was closed) go now; sharing goes on after a reload.
    this.flush();
    const on = JSON.parse(localStorage.getItem(ON_KEY) ?? 'null');
    if (on?.person === person) this.start(new Date(on.since));
  }

  start(since = new Date()) {
    this.#error('');
    if (!('geolocation' in navigator)) {
      this.toggle.checked = false;
      this.#error('This browser cannot tell its position (a page must be opened over https to ask).');
      return;
    }
    this.toggle.checked = true;
    this.since = since;
    localStorage.setItem(ON_KEY, JSON.stringify({ person: this.person, since: since.toISOString() }));
    this.watch = navigator.geolocation.watchPosition((p) => this.#fix(p), (e) => this.#failed(e),
      { enableHighAccuracy: true, maximumAge: 0, timeout: 60000 });
    // Standing still, the browser reports nothing new: still here is a ping too.
    this.heartbeat = setInterval(() => this.#stillHere(), 1000);
    this.#show();
  }

  /** Stops watching the position; pings queued are still sent. */
  stop() {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    clearInterval(this.heartbeat);
    this.watch = null;
    this.since = null;
    this.lastFix = null;
    this.toggle.checked = false;
    localStorage.removeItem(ON_KEY);
    this.#show();
  }

  /** Signing out: stops, sends what it can, and keeps no one's positions in this browser. */
  async signOut() {
    this.stop();
    await this.flush().catch(() => {});
    await this.queue.clear(this.person);
    window.removeEventListener('online', this.online);
  }

  #fix(position) {
    this.#error('');
    const { latitude, longitude } = position.coords;
    const fix = { latitude, longitude, at: position.timestamp };
    for (const key of EXTRAS) fix[key] = position.coords[key];
    this.lastFix = fix;
    const last = this.lastQueued;
    if (!last || metres(last, fix) >= MIN_MOVE_M || fix.at - last.at >= INTERVAL_S * 1000) this.#queue(fix);
  }

  #stillHere() {
    const now = Date.now();
    if (this.lastFix && this.lastQueued && now - this.lastQueued.at >= INTERVAL_S * 1000) {
      this.#queue({ ...this.lastFix, at: now });
    }
  }

  #failed(error) {
    this.#error(POSITION_ERRORS[error.code] ?? error.message);
    if (error.code === 1) this.stop();
  }

  async #queue(fix) {
    this.lastQueued = fix;
    await this.queue.add({
      person: this.person, latitude: fix.latitude, longitude: fix.longitude, creation_time: new Date(fix.at).toISOString(),
      ...Object.fromEntries(EXTRAS.map((key) => [key, Number.isFinite(fix[key]) ? fix[key] : null])),
    });
    await this.#show();
    this.flush();
  }

  /** Sends the queue, oldest first, one request at a time. */
  flush() {
    // A ping queued while a send is under way is taken by that send's next round.
    this.pending = true;
    this.sending ??= this.#send().finally(() => { this.sending = null; });
    return this.sending;
  }

  async #send() {
    clearTimeout(this.retry);
    for (;;) {
      this.pending = false;
      const pings = await this.queue.oldest(this.person, BATCH);
      if (!pings.length) {
        if (this.pending) continue;
        return;
      }
      try {
        await postMyLocations(pings.map(sent));
      } catch (error) {
        if (error.status === 401) {
          this.stop();
          this.#error('You are signed out: sharing stopped. Sign in again to send the pings waiting here.');
          this.onSignedOut();
          return;
        }
        if (error.status === 0 || error.status === 429 || error.status >= 500) {
          // Offline, or the server busy: the pings wait for the next try.
          this.#status(error.status === 0 && !navigator.onLine
            ? 'Offline: pings wait here and are sent when the connection is back.'
            : `Not sent yet, trying again shortly: ${error.message}`);
          this.retry = setTimeout(() => this.flush(), RETRY_MS);
          return;
        }
        if (error.status === 403 || error.status === 409) {
          // This account may not post them now (its role, or no room for this browser's device):
          // they wait here, and sharing stops until it is sorted out.
          this.stop();
          this.#error(`Sharing stopped: ${error.message}`);
          return;
        }
        // Refused as they are (out of range, too far ahead): sending them again would not help.
        await this.queue.remove(pings.map((p) => p.key));
        this.#error(`${pings.length === 1 ? 'A ping was' : `${pings.length} pings were`} refused: ${error.message}`);
        await this.#show();
        continue;
      }
      await this.queue.remove(pings.map((p) => p.key));
      this.lastSent = new Date();
      this.#status('');
      await this.#show();
    }
  }

  async #show() {
    $('share-since').textContent = this.since ? formatTime(this.since) : 'not sharing';
    $('share-sent').textContent = this.lastSent ? formatTime(this.lastSent) : 'nothing yet';
    $('share-queued').textContent = String(await this.queue.count(this.person));
  }

  #status(text) {
    $('share-status').textContent = text;
  }

  #error(text) {
    $('share-error').textContent = text;
    $('share-error').hidden = !text;
  }
}
