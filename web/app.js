// The page's entry: who is asking first (GET /api/me), then the views, chosen by the URL's
// fragment (#/attendees[/ID], #/live, #/account), so each is a link and the browser's history
// works without any server-side routing. Signed out, only the sign-in view shows; an attendee
// sees their own meetings and nothing of the directory.

import { Account, SignIn } from './account.js';
import { ME, getMe, getVenue, signOut } from './api.js';
import { Attendees } from './attendees.js';
import { personName } from './format.js';
import { Live } from './live.js';
import { Share } from './share.js';

const $ = (id) => document.getElementById(id);
const views = {
  signin: $('signin-view'), attendees: $('attendees-view'), live: $('live-view'), account: $('account-view'),
};
let who = null; // { mode: 'open' | 'staff' | 'attendee', me }
let attendees = null;
let live = null;
let account = null;
let shown = null;
let share = null;
const signIn = new SignIn();

// 401 from /api/me means either nobody is signed in, or the server runs the open contract
// (`--auth off`), where there is no "me" but every route answers: the venue tells them apart.
async function whoIsAsking() {
  try {
    const me = await getMe();
    return { mode: me.role === 'attendee' ? 'attendee' : 'staff', me };
  } catch (error) {
    if (error.status !== 401) throw error;
  }
  try {
    await getVenue();
    return { mode: 'open', me: null };
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

function showWho() {
  const signed = who !== null;
  const staff = who?.mode !== 'attendee';
  for (const li of document.querySelectorAll('nav li[data-for]')) {
    const wanted = { signed, staff: signed && staff, account: Boolean(who?.me) }[li.dataset.for];
    li.hidden = !wanted;
  }
  $('nav-attendees').textContent = who?.mode === 'attendee' ? 'My meetings' : 'Attendees';
  $('who').hidden = !who?.me;
  if (who?.me) {
    const me = who.me;
    const name = me.person ? personName(me.person) : (me.email ?? `account ${me.account}`);
    $('who-text').textContent = `${name} · ${me.role}`;
  }
}

function route() {
  const hash = location.hash;
  if (hash && !hash.startsWith('#/')) return; // an in-page link, such as "Skip to content"
  const [path, query = ''] = hash.slice(2).split('?');
  const [view, id] = path.split('/');
  let name;
  if (who === null) name = 'signin';
  else if (view === 'account' && who.me) name = 'account';
  else if (view === 'live' && who.mode !== 'attendee') name = 'live';
  else name = 'attendees';
  for (const [n, el] of Object.entries(views)) el.hidden = n !== name;
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (name !== 'live') live?.hide(); // no stream while nobody looks at it
  if (name !== 'account') account?.hide();
  if (name === 'signin') {
    document.title = 'Sign in · UdaConnect';
  } else if (name === 'account') {
    document.title = 'Account · UdaConnect';
    account ??= new Account();
    account.show(who.me);
  } else if (name === 'live') {
    document.title = 'Venue live · UdaConnect';
    live ??= new Live();
    live.show();
  } else if (who.mode === 'attendee') {
    // Their own meetings, whatever attendee the URL names: an attendee reads no one else's.
    attendees.show(ME, new URLSearchParams(query));
  } else {
    if (!id) document.title = 'Attendees · UdaConnect';
    let person = id || null;
    try {
      person = person && decodeURIComponent(person);
    } catch {
      // a malformed escape: show it as typed, as an unknown attendee
    }
    attendees.show(person, new URLSearchParams(query));
  }
  // Moving between views puts the keyboard at the start of the new one.
  if (shown !== null && shown !== name) $('main').focus();
  shown = name;
}

$('sign-out').addEventListener('click', async () => {
  // Sharing stops; what it queued is sent while the session still holds.
  await share?.signOut().catch(() => {});
  try {
    await signOut();
  } catch {
    // Signed out or not, the page forgets who it was: a reload asks the server again.
  }
  // Start afresh at the top, asking none of the signed-in views' data on the way.
  window.removeEventListener('hashchange', route);
  location.replace(`${location.pathname}#/`);
  location.reload();
});

async function start() {
  try {
    who = await whoIsAsking();
  } catch (error) {
    // The server could not say who is asking: the sign-in view carries the reason.
    who = null;
    $('signin-status').textContent = error.message;
  }
  if (who === null) signIn.offerDemo();
  showWho();
  // The directory loads at once for staff, so names are at hand in every view.
  if (who !== null) attendees = new Attendees({ self: who.mode === 'attendee' });
  // Sharing is an attendee's, for their own person.
  const person = who?.mode === 'attendee' ? who.me.person?.id : undefined;
  if (person !== undefined) share = new Share(person);
  window.addEventListener('hashchange', route);
  route();
}

start();
