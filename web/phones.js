// "Add a phone": registers a device for the signed-in attendee and shows, once, what each app
// needs: OwnTracks' configuration as a QR code and an .otrc file (both made by the server), the
// same settings to type in, and Traccar Client's. Then lists the account's phones (never a
// secret: the server keeps only hashes) and revokes one after a confirmation.

import { addDevice, listDevices, revokeDevice } from './api.js';
import { formatTime, h } from './format.js';

const $ = (id) => document.getElementById(id);

const APPS = { owntracks: 'OwnTracks', osmand: 'OsmAnd', 'traccar-client': 'Traccar Client', browser: 'Browser' };
// The device the page's "Share my location" registers on its first ping (see share.js).
const BROWSER_DEVICE = 'Browser (Share my location)';
const isBrowser = (d) => d.app === 'browser' || d.name === BROWSER_DEVICE;

export class Phones {
  /** `changed`: called once a phone is added or revoked, as each phone's token is in the tokens list. */
  constructor(changed = () => {}) {
    this.changed = changed;
    this.form = $('phone-form');
    this.form.addEventListener('submit', (e) => this.#add(e));
    this.devices = new Map();
    this.asking = null; // the id of the device whose revocation is being confirmed
    $('phones-body').addEventListener('click', (e) => {
      const button = e.target.closest('button[data-revoke]');
      if (button) this.#ask(Number(button.dataset.revoke));
    });
    $('phone-revoke-yes').addEventListener('click', () => this.#revoke());
    $('phone-revoke-no').addEventListener('click', () => this.#cancel());
  }

  /** Offered to an account with a person: a phone posts pings for one. */
  show(me) {
    $('phones-panel').hidden = !me.person;
    if (me.person) this.load();
  }

  /** Forgets what was shown: it holds the phone's password. */
  hide() {
    this.addedId = null;
    this.asking = null;
    $('phone-revoke').hidden = true;
    $('phone-added').hidden = true;
    for (const id of ['phone-owntracks', 'phone-traccar']) $(id).replaceChildren();
    $('phone-qr').removeAttribute('src');
    const link = $('phone-otrc');
    if (link.href) URL.revokeObjectURL(link.href);
    link.removeAttribute('href');
  }

  async #add(e) {
    e.preventDefault();
    const error = $('phone-error');
    const input = $('phone-name');
    error.hidden = true;
    if (!input.checkValidity()) {
      error.textContent = `Phone name: ${input.validationMessage}`;
      error.hidden = false;
      input.focus();
      return;
    }
    const button = this.form.querySelector('button');
    button.disabled = true;
    try {
      const phone = await addDevice(input.value.trim());
      this.hide();
      this.#showSettings(phone);
      this.addedId = phone.id;
      input.value = '';
      $('phones-status').textContent = `Added ${phone.name}.`;
      $('phone-otrc').focus();
      this.changed();
      await this.load();
    } catch (err) {
      error.textContent = `Could not add the phone: ${err.message}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  #showSettings(phone) {
    const { owntracks, traccar } = phone;
    // An image, not markup put into the page: the SVG is shown and never run.
    $('phone-qr').src = `data:image/svg+xml;base64,${btoa(owntracks.qr_svg)}`;
    const file = new Blob([JSON.stringify(owntracks.otrc, null, 2)], { type: 'application/json' });
    const link = $('phone-otrc');
    link.href = URL.createObjectURL(file);
    link.download = `${owntracks.device_id}.otrc`;
    link.textContent = `Download ${owntracks.device_id}.otrc`;
    const list = (pairs) => pairs.flatMap(([term, value]) => [h('dt', { text: term }), h('dd', { text: value })]);
    $('phone-owntracks').replaceChildren(...list([
      ['URL', owntracks.url],
      ['UserID', owntracks.username],
      ['DeviceID', owntracks.device_id],
      ['Password', owntracks.password],
    ]));
    $('phone-traccar').replaceChildren(...list([
      ['Server URL', traccar.url],
      ['Device identifier', traccar.device_id],
    ]));
    $('phone-added').hidden = false;
  }

  /** Lists the account's live phones; the status line keeps what the last action said. */
  async load() {
    // Only the latest of overlapping loads draws (see Account's tokens).
    const load = (this.loads = (this.loads ?? 0) + 1);
    let devices;
    try {
      devices = await listDevices();
      if (load !== this.loads) return;
    } catch (error) {
      $('phones-table').hidden = true;
      $('phones-status').textContent = `Could not load your phones: ${error.message}`;
      return;
    }
    this.devices = new Map(devices.map((d) => [d.id, d]));
    $('phones-body').replaceChildren(...devices.map((d) => h('tr', { 'data-device': d.id },
      h('th', { scope: 'row', text: d.name }),
      h('td', { text: formatTime(d.created) }),
      h('td', { text: d.last_seen ? formatTime(d.last_seen) : 'never' }),
      h('td', { text: d.app ? (APPS[d.app] ?? d.app) : 'none yet' }),
      h('td', { text: d.battery === null || d.battery === undefined ? 'unknown' : `${d.battery} %` }),
      h('td', {}, h('button', { type: 'button', class: 'secondary', 'data-revoke': d.id, 'aria-label': `Revoke ${d.name}`, text: 'Revoke' })))));
    $('phones-table').hidden = devices.length === 0;
    $('phones-empty').hidden = devices.length > 0;
    if (this.asking !== null && !this.devices.has(this.asking)) this.#cancel(false);
  }

  /** The confirmation step: what revoking this device does, and a way back. */
  #ask(id) {
    const device = this.devices.get(id);
    if (!device) return;
    this.asking = id;
    $('phone-revoke-question').firstChild.textContent = `Revoke ${device.name}?`;
    // The browser's device has no credential to stop: a page still sharing registers it again.
    $('phone-revoke-effect').textContent = isBrowser(device)
      ? 'Its pings stay. A browser where Share my location is still on registers it again with its next ping: '
        + 'to stop sharing, turn Share my location off in that browser.'
      : 'Its app is refused from now on (its password and device identifier stop working); its pings stay. '
        + 'To use the phone again, add it again.';
    $('phone-revoke-yes').textContent = `Yes, revoke ${device.name}`;
    $('phone-revoke').hidden = false;
    // The safe choice has the focus: Enter alone does not revoke.
    $('phone-revoke-no').focus();
  }

  #cancel(refocus = true) {
    const id = this.asking;
    this.asking = null;
    $('phone-revoke').hidden = true;
    if (refocus) $('phones-body').querySelector(`button[data-revoke="${id}"]`)?.focus();
  }

  async #revoke() {
    const device = this.devices.get(this.asking);
    if (!device) return;
    const yes = $('phone-revoke-yes');
    const status = $('phones-status');
    yes.disabled = true;
    try {
      await revokeDevice(device.id);
      status.textContent = `Revoked ${device.name}.`;
    } catch (error) {
      // 404: revoked already (in another tab, say); the list below then shows it gone.
      if (error.status !== 404) {
        status.textContent = `Could not revoke ${device.name}: ${error.message}`;
        return;
      }
      status.textContent = `${device.name} was revoked already.`;
    } finally {
      yes.disabled = false;
    }
    // The settings still shown for a phone just revoked are of no use any more.
    if (this.addedId === device.id) this.hide();
    this.asking = null;
    $('phone-revoke').hidden = true;
    this.changed();
    await this.load();
    // Its button is gone: the list's heading takes the focus, and the status line says what happened.
    $('phones-list-title').focus();
  }
}
