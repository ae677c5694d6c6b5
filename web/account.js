// Signing in and the account: the sign-in form (a link by e-mail, no password), and the
// caller's tokens: create (the secret shown this once), list, revoke; with the addresses,
// sessions and (for admins) accounts of settings.js.

import { createToken, getDemoLinks, getVisibility, listTokens, requestSignIn, revokeToken, setVisibility } from './api.js';
import { formatTime, h } from './format.js';
import { Phones } from './phones.js';
import { Accounts, Addresses, MyData, Sessions } from './settings.js';

const $ = (id) => document.getElementById(id);
// The roles a token may have, lowest first; a token's role is never above its account's.
const ROLES = ['device', 'attendee', 'organizer', 'admin'];

export class SignIn {
  constructor() {
    this.form = $('signin-form');
    this.form.addEventListener('submit', (e) => this.#submit(e));
  }

  /** Offers the demo's accounts when the server is a demo opened on its own machine. */
  async offerDemo() {
    let answer;
    try {
      answer = await getDemoLinks();
    } catch {
      return; // not a demo, or not this machine: the e-mail form is the way in
    }
    const names = { organizer: 'the demo organizer', attendee: 'the demo attendee' };
    const items = answer.links.map((link) => {
      // The link's own path, on the origin this page was opened at, so the session cookie is this origin's.
      const url = new URL(link.url);
      return h('li', {}, h('a', { href: `${url.pathname}${url.search}` }, `Sign in as ${names[link.role] ?? link.role}`),
        ` (${link.email})`);
    });
    $('signin-demo-links').replaceChildren(...items);
    $('signin-demo').hidden = false;
  }

  async #submit(e) {
    e.preventDefault();
    const input = $('signin-email');
    const error = $('signin-error');
    error.hidden = true;
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
    $('signin-status').textContent = '';
    if (!input.checkValidity()) {
      this.#refuse(input.validationMessage);
      return;
    }
    const button = this.form.querySelector('button');
    button.disabled = true;
    try {
      await requestSignIn(input.value.trim());
      // The same words whether or not the address has an account: the server tells no more.
      $('signin-status').textContent = 'If the address has an account, a link to sign in is on its way. It is valid for 15 minutes.';
    } catch (err) {
      this.#refuse(err.status === 429 ? `Too many requests: ${err.message}` : err.message);
    } finally {
      button.disabled = false;
    }
  }

  #refuse(message) {
    const input = $('signin-email');
    $('signin-error').textContent = message;
    $('signin-error').hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', 'signin-error');
    input.focus();
  }
}

export class Account {
  constructor() {
    this.form = $('token-form');
    this.form.addEventListener('submit', (e) => this.#create(e));
    $('tokens-body').addEventListener('click', (e) => {
      const button = e.target.closest('button[data-revoke]');
      if (button) this.#revoke(button);
    });
    $('token-copy').addEventListener('click', () => this.#copy());
    $('visibility-toggle').addEventListener('change', (e) => this.#choose(e.target, 'visible'));
    $('live-map-toggle').addEventListener('change', (e) => this.#choose(e.target, 'on_live_map'));
    this.addresses = new Addresses();
    this.sessions = new Sessions();
    this.accounts = new Accounts();
    this.data = new MyData();
    this.phones = new Phones(() => this.load());
  }

  /** Shows the account of `me` (the answer of GET /api/me). */
  show(me) {
    this.me = me;
    const email = me.email ? ` (${me.email})` : '';
    $('account-who').textContent = `Signed in as ${me.role}${email}.`;
    const roles = ROLES.slice(0, ROLES.indexOf(me.role) + 1);
    // A device token posts pings for a person: an account without one cannot hold it.
    const offered = me.person ? roles : roles.filter((r) => r !== 'device');
    const select = $('token-role');
    if (select.options.length !== offered.length) select.replaceChildren(...offered.map((r) => h('option', { value: r, text: r })));
    // Only a person can be met: staff accounts without one have nothing to show or hide.
    $('visibility-panel').hidden = !me.person;
    if (me.person) this.#loadVisibility();
    this.load();
    this.addresses.show(me);
    this.sessions.load();
    this.accounts.show(me);
    this.data.show();
    this.phones.show(me);
  }

  async #loadVisibility() {
    const toggles = [$('visibility-toggle'), $('live-map-toggle')];
    const status = $('visibility-status');
    for (const t of toggles) t.disabled = true;
    try {
      const choice = await getVisibility();
      [toggles[0].checked, toggles[1].checked] = [choice.visible, choice.on_live_map];
      for (const t of toggles) t.disabled = false;
      status.textContent = '';
    } catch (error) {
      status.textContent = `Could not load your choice: ${error.message}`;
    }
  }

  async #choose(toggle, field) {
    const status = $('visibility-status');
    const wanted = toggle.checked;
    toggle.disabled = true;
    try {
      const shown = (await setVisibility({ [field]: wanted }))[field];
      toggle.checked = shown;
      status.textContent = field === 'visible'
        ? (shown ? 'People you met now see your name and company.' : 'People you met now see you as "Someone".')
        : (shown ? 'Organizers now see your name on the live map.' : 'Organizers now see you as an anonymous dot on the live map.');
    } catch (error) {
      toggle.checked = !wanted;
      status.textContent = `Could not save your choice: ${error.message}`;
    } finally {
      toggle.disabled = false;
    }
  }

  hide() {
    // The secret is not kept on the page once the view is left.
    $('token-secret').hidden = true;
    $('token-secret-value').textContent = '';
    this.phones.hide();
  }

  async load() {
    const status = $('tokens-status');
    status.textContent = 'Loading tokens…';
    // Loads overlap (the view opening, a revocation, a phone added): only the latest may draw,
    // or an answer from before a revocation would list the revoked token again.
    const load = (this.loads = (this.loads ?? 0) + 1);
    try {
      const tokens = (await listTokens()).filter((t) => !t.revoked);
      if (load !== this.loads) return;
      $('tokens-body').replaceChildren(...tokens.map((t) => h('tr', { 'data-token': t.id },
        h('td', { text: t.name }),
        h('td', { text: t.role }),
        h('td', { text: t.scopes }),
        h('td', { text: formatTime(t.created) }),
        h('td', { text: t.last_used ? formatTime(t.last_used) : 'never' }),
        h('td', { text: t.expires ? formatTime(t.expires) : 'never' }),
        h('td', {}, h('button', { type: 'button', class: 'secondary', 'data-revoke': t.id, 'aria-label': `Revoke ${t.name}`, text: 'Revoke' })))));
      $('tokens-table').hidden = tokens.length === 0;
      status.textContent = tokens.length ? `${tokens.length} live ${tokens.length === 1 ? 'token' : 'tokens'}.` : 'No live tokens.';
    } catch (error) {
      $('tokens-table').hidden = true;
      status.textContent = `Could not load the tokens: ${error.message}`;
    }
  }

  async #create(e) {
    e.preventDefault();
    const error = $('token-error');
    error.hidden = true;
    const els = this.form.elements;
    const invalid = [...this.form.querySelectorAll('input')].find((el) => !el.checkValidity());
    if (invalid) {
      error.textContent = `${this.form.querySelector(`label[for="${invalid.id}"]`).textContent}: ${invalid.validationMessage}`;
      error.hidden = false;
      invalid.focus();
      return;
    }
    const fields = { name: els.name.value.trim(), role: els.role.value };
    if (els.days.value) fields.expires_in_days = Number(els.days.value);
    try {
      const created = await createToken(fields);
      $('token-secret-value').textContent = created.token;
      $('token-copied').textContent = '';
      $('token-secret').hidden = false;
      els.name.value = '';
      els.days.value = '';
      await this.load();
      $('token-copy').focus();
    } catch (err) {
      error.textContent = `Could not create the token: ${err.message}`;
      error.hidden = false;
    }
  }

  async #copy() {
    try {
      await navigator.clipboard.writeText($('token-secret-value').textContent);
      $('token-copied').textContent = 'Copied.';
    } catch {
      $('token-copied').textContent = 'Could not copy: select the token and copy it by hand.';
    }
  }

  async #revoke(button) {
    const row = button.closest('tr');
    const name = row.firstChild.textContent;
    button.disabled = true;
    try {
      await revokeToken(button.dataset.revoke);
      $('tokens-status').textContent = `Revoked ${name}.`;
      row.remove();
      if (!$('tokens-body').children.length) $('tokens-table').hidden = true;
      // A phone's token revoked ends the phone.
      if (this.me?.person) this.phones.load();
    } catch (error) {
      button.disabled = false;
      $('tokens-status').textContent = `Could not revoke ${name}: ${error.message}`;
    }
  }
}
