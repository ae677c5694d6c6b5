// "Add a phone": registers a device for the signed-in attendee and shows, once, what each app
// needs: OwnTracks' configuration as a QR code and an .otrc file (both made by the server), the
// same settings to type in, and Traccar Client's.

import { addDevice } from './api.js';
import { h } from './format.js';

const $ = (id) => document.getElementById(id);

export class Phones {
  constructor() {
    this.form = $('phone-form');
    this.form.addEventListener('submit', (e) => this.#add(e));
  }

  /** Offered to an account with a person: a phone posts pings for one. */
  show(me) {
    $('phones-panel').hidden = !me.person;
  }

  /** Forgets what was shown: it holds the phone's password. */
  hide() {
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
      input.value = '';
      $('phones-status').textContent = `Added ${phone.name}.`;
      $('phone-otrc').focus();
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
}
