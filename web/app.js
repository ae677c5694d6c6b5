// The page's entry: two views, chosen by the URL's fragment (#/attendees[/ID], #/live), so each
// is a link and the browser's history works without any server-side routing.

import { Attendees } from './attendees.js';
import { Live } from './live.js';

const attendees = new Attendees();
const live = new Live();
const views = { attendees: document.getElementById('attendees-view'), live: document.getElementById('live-view') };
let shown = null;

function route() {
  const hash = location.hash;
  if (hash && !hash.startsWith('#/')) return; // an in-page link, such as "Skip to content"
  const [path, query = ''] = hash.slice(2).split('?');
  const [view, id] = path.split('/');
  const name = view === 'live' ? 'live' : 'attendees';
  for (const [n, el] of Object.entries(views)) el.hidden = n !== name;
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (name === 'live') {
    document.title = 'Venue live · UdaConnect';
    live.show();
  } else {
    live.hide(); // no stream while nobody looks at it
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
  if (shown !== null && shown !== name) document.getElementById('main').focus();
  shown = name;
}

window.addEventListener('hashchange', route);
route();
