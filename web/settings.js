// The account's own settings beside its tokens: its addresses (a new one is the account's once
// the link mailed to it is followed), its browser sessions (each can be ended from here), its
// data (downloaded whole, or deleted with the account after a confirmation); for admins,
// every account and its role.

import {
  EXPORT_PATH, changeEmail, changeRole, deleteMe, listAccounts, listSessions, removeSecondaryEmail, revokeSession,
} from './api.js';
import { formatTime, h } from './format.js';

const $ = (id) => document.getElementById(id);
const ROLES = ['attendee', 'device', 'organizer', 'admin'];

/** Shows `message` in the status line `id` (read out by screen readers: role=status). */
function say(id, message) {
  $(id).textContent = message;
}

export class Addresses {
  constructor() {
    for (const [formId, secondary] of [['email-form', false], ['secondary-form', true]]) {
      const form = $(formId);
      form.addEventListener('submit', (e) => this.#submit(e, form, secondary));
    }
    $('secondary-remove').addEventListener('click', () => this.#remove());
  }

  show(me) {
    $('email-primary').textContent = me.email ?? 'none';
    $('email-secondary').textContent = me.secondary_email ?? 'none';
    $('secondary-remove').hidden = !me.secondary_email;
    $('emails-error').hidden = true;
  }

  async #submit(e, form, secondary) {
    e.preventDefault();
    const input = form.elements.email;
    const error = $('emails-error');
    error.hidden = true;
    input.removeAttribute('aria-invalid');
    input.removeAttribute('aria-describedby');
    say('emails-status', '');
    if (!input.checkValidity()) {
      this.#refuse(input, input.validationMessage);
      return;
    }
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const address = input.value.trim();
      await changeEmail(address, secondary);
      input.value = '';
      say('emails-status', `A link is on its way to ${address}. The address is yours once you follow it (within 15 minutes).`);
    } catch (err) {
      this.#refuse(input, err.status === 429 ? `Too many changes: ${err.message}` : err.message);
    } finally {
      button.disabled = false;
    }
  }

  #refuse(input, message) {
    const error = $('emails-error');
    error.textContent = message;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', 'emails-error');
    input.focus();
  }

  async #remove() {
    const button = $('secondary-remove');
    button.disabled = true;
    try {
      await removeSecondaryEmail();
      $('email-secondary').textContent = 'none';
      button.hidden = true;
      say('emails-status', 'The secondary address is removed.');
    } catch (err) {
      say('emails-status', `Could not remove the secondary address: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }
}

export class Sessions {
  constructor() {
    $('sessions-body').addEventListener('click', (e) => {
      const button = e.target.closest('button[data-end]');
      if (button) this.#end(button);
    });
  }

  async load() {
    say('sessions-status', 'Loading sessions…');
    try {
      const sessions = await listSessions();
      $('sessions-body').replaceChildren(...sessions.map((s) => {
        const browser = s.user_agent ?? 'Unknown browser';
        const name = s.current ? 'this browser' : browser;
        return h('tr', { 'data-session': s.id },
          h('td', { text: s.current ? `${browser} (this browser)` : browser }),
          h('td', { text: formatTime(s.created) }),
          h('td', { text: s.last_used ? formatTime(s.last_used) : 'not yet' }),
          h('td', { text: formatTime(s.expires) }),
          h('td', {}, h('button', { type: 'button', class: 'secondary', 'data-end': s.id, 'aria-label': `End session of ${name}`, text: 'End' })));
      }));
      $('sessions-table').hidden = sessions.length === 0;
      say('sessions-status', sessions.length
        ? `${sessions.length} signed-in ${sessions.length === 1 ? 'browser' : 'browsers'}.`
        : 'No browser is signed in to this account.');
    } catch (error) {
      $('sessions-table').hidden = true;
      say('sessions-status', `Could not load the sessions: ${error.message}`);
    }
  }

  async #end(button) {
    const row = button.closest('tr');
    button.disabled = true;
    try {
      await revokeSession(button.dataset.end);
      row.remove();
      if (!$('sessions-body').children.length) $('sessions-table').hidden = true;
      say('sessions-status', 'Session ended: that browser is signed out.');
    } catch (error) {
      button.disabled = false;
      say('sessions-status', `Could not end the session: ${error.message}`);
    }
  }
}

export class Accounts {
  constructor() {
    $('accounts-body').addEventListener('click', (e) => {
      const button = e.target.closest('button[data-account]');
      if (button) this.#save(button);
    });
  }

  show(me) {
    const admin = me.role === 'admin';
    $('accounts-panel').hidden = !admin;
    if (admin) this.load();
  }

  async load() {
    say('accounts-status', 'Loading accounts…');
    try {
      const accounts = await listAccounts();
      $('accounts-body').replaceChildren(...accounts.map((a) => {
        const name = a.email ?? `account ${a.id}`;
        const select = h('select', { id: `role-${a.id}`, 'aria-label': `Role of ${name}` },
          ...ROLES.map((r) => h('option', { value: r, text: r, selected: r === a.role })));
        return h('tr', { 'data-account': a.id },
          h('td', { text: name }),
          h('td', { text: a.person_id ? `person ${a.person_id}` : '—' }),
          h('td', {}, select),
          h('td', {}, h('button', { type: 'button', class: 'secondary', 'data-account': a.id, 'aria-label': `Save role of ${name}`, text: 'Save' })));
      }));
      $('accounts-table').hidden = accounts.length === 0;
      say('accounts-status', `${accounts.length} ${accounts.length === 1 ? 'account' : 'accounts'}.`);
    } catch (error) {
      $('accounts-table').hidden = true;
      say('accounts-status', `Could not load the accounts: ${error.message}`);
    }
  }

  async #save(button) {
    const id = button.dataset.account;
    const name = button.closest('tr').firstChild.textContent;
    const role = $(`role-${id}`).value;
    button.disabled = true;
    try {
      const changed = await changeRole(id, role);
      say('accounts-status', `${name} is ${changed.role} now.`);
    } catch (error) {
      say('accounts-status', `Could not change the role of ${name}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }
}

/** What the confirmation asks to be typed before the account is deleted. */
const DELETE_WORD = 'delete';

export class MyData {
  constructor() {
    // A plain link: the browser streams the file to disk, however many pings it holds.
    $('export-link').setAttribute('href', EXPORT_PATH);
    $('delete-start').addEventListener('click', () => this.#ask());
    $('delete-cancel').addEventListener('click', () => this.#cancel());
    $('delete-form').addEventListener('submit', (e) => this.#delete(e));
  }

  show() {
    this.#cancel();
  }

  #ask() {
    $('delete-form').hidden = false;
    $('delete-start').hidden = true;
    $('delete-confirm').focus();
  }

  #cancel() {
    $('delete-form').hidden = true;
    $('delete-start').hidden = false;
    $('delete-confirm').value = '';
    $('delete-error').hidden = true;
    $('delete-confirm').removeAttribute('aria-invalid');
  }

  async #delete(e) {
    e.preventDefault();
    const input = $('delete-confirm');
    const error = $('delete-error');
    if (input.value.trim().toLowerCase() !== DELETE_WORD) {
      error.textContent = `Type ${DELETE_WORD} to confirm: nothing was deleted.`;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    const button = $('delete-submit');
    button.disabled = true;
    try {
      await deleteMe();
      // Signed out everywhere: start afresh at the sign-in view.
      location.replace(`${location.pathname}#/`);
      location.reload();
    } catch (err) {
      error.textContent = `Could not delete the account: ${err.message}`;
      error.hidden = false;
      button.disabled = false;
    }
  }
}
