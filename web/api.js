// The UdaConnect HTTP API, as the page uses it. Every failure becomes an ApiError whose message
// can be shown as it is: the problem's `detail` when the server explained, else what went wrong.

export class ApiError extends Error {
  constructor(message, status = 0, problem = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0: the server could not be reached
    this.problem = problem;
  }
}

async function request(path, { method = 'GET', body } = {}) {
  let response;
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError('Cannot reach the UdaConnect server. Check that it is running, then try again.');
  }
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      // Not a problem document (a proxy's error page, say): fall back to the status line.
    }
    const detail = problem?.detail || problem?.title || `The server answered ${response.status} ${response.statusText}.`;
    throw new ApiError(detail, response.status, problem);
  }
  // 202 and 204 may come with no body.
  const text = await response.text();
  return { data: text ? JSON.parse(text) : null, headers: response.headers };
}

const getJson = async (path) => (await request(path)).data;

/** Every person, following the pages' X-Next-Cursor. */
export async function listPersons() {
  const persons = [];
  let cursor = null;
  do {
    const query = cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`;
    const { data, headers } = await request(`/api/persons${query}`);
    persons.push(...data);
    cursor = headers.get('x-next-cursor');
  } while (cursor);
  return persons;
}

const people = new Map();
let peopleLoad = null;

/** Every person, loaded once and kept (persons are never removed); `refresh` asks again. */
export function loadPeople(refresh = false) {
  if (refresh || !peopleLoad) {
    peopleLoad = listPersons().then((list) => {
      for (const p of list) people.set(p.id, p);
      return list;
    }, (error) => {
      peopleLoad = null;
      throw error;
    });
  }
  return peopleLoad;
}

/** A person already loaded by loadPeople, or undefined. */
export const knownPerson = (id) => people.get(id);

// `ME` stands for the caller's own person: an attendee reads only their own data, under /api/me.
export const ME = 'me';
const personPath = (id) => (id === ME ? '/api/me' : `/api/persons/${encodeURIComponent(id)}`);

export const getSummary = (id) => getJson(`${personPath(id)}/summary`);

/** Contacts of a person over tracks; `params`: start, end, distance, max_interpolation, min_duration. */
export const getContacts = (id, params) => getJson(`${personPath(id)}/contacts?${new URLSearchParams(params)}`);

// A contact of the caller's: by person id where their contacts name them, else by its handle.
const contactPath = (ref, what, params) => `/api/me/contacts/${encodeURIComponent(ref)}/${what}?${new URLSearchParams(params)}`;
/** Ask a contact to exchange e-mail addresses (`on`), or withdraw; `params`: the contacts window. */
export const setReveal = (ref, on, params) => request(contactPath(ref, 'reveal', params), { method: on ? 'POST' : 'DELETE' })
  .then((r) => r.data);
/** Hide a contact (`dispute`: "I did not meet this person"), or show it again (`on` false). */
export const setHidden = (ref, on, params, dispute = false) => request(contactPath(ref, 'hide', params),
  on ? { method: 'POST', body: { dispute } } : { method: 'DELETE' }).then((r) => r.data);
/** The caller's pings that made a contact: `{ distance_m, pings, more }`. */
export const getEvidence = (ref, params) => getJson(contactPath(ref, 'evidence', params));
/** Requests made by and to the caller, and the contacts the caller hid. */
export const getReveals = () => getJson('/api/me/reveals');

/** Who is signing in: the account's role, person and e-mail. 401 when nobody is. */
export const getMe = () => getJson('/api/me');
/** Asks for a sign-in link by e-mail; the server answers the same whether or not the address has an account. */
export const requestSignIn = (email) => request('/api/auth/login', { method: 'POST', body: { email } });
/** The demo's sign-in links (`serve --demo`, on the server's own machine); 404 elsewhere. */
export const getDemoLinks = () => getJson('/api/auth/demo');
export const signOut = () => request('/api/auth/logout', { method: 'POST' });

export const listTokens = () => getJson('/api/me/tokens');
/** A new token for the caller's account; its secret is in `token`, answered this once. */
export const createToken = (fields) => request('/api/me/tokens', { method: 'POST', body: fields }).then((r) => r.data);
/** Whether the people the caller met, and organizers on the live map, see the caller's name: `{ visible, on_live_map }`. */
export const getVisibility = () => getJson('/api/me/visibility');
/** Sets either choice (`{ visible }` or `{ on_live_map }`); answers both as stored. */
export const setVisibility = (choice) => request('/api/me/visibility', { method: 'PUT', body: choice }).then((r) => r.data);
/** Registers a phone named `name`: its settings for each app, secrets included, this once. */
export const addDevice = (name) => request('/api/me/devices', { method: 'POST', body: { name } }).then((r) => r.data);
/** The caller's live phones, oldest first: name, created, last_seen, app, battery; never a secret. */
export const listDevices = () => getJson('/api/me/devices');
/** Revokes a phone: its token and OsmAnd id stop working at once. */
export const revokeDevice = (id) => request(`/api/me/devices/${encodeURIComponent(id)}`, { method: 'DELETE' });
export const revokeToken = (id) => request(`/api/me/tokens/${encodeURIComponent(id)}`, { method: 'DELETE' });

/** Asks for a link to `email` that makes it the account's address (`secondary`: its second one). */
export const changeEmail = (email, secondary = false) => request(secondary ? '/api/me/secondary-email' : '/api/me/email',
  { method: secondary ? 'PUT' : 'POST', body: { email } });
export const removeSecondaryEmail = () => request('/api/me/secondary-email', { method: 'DELETE' });
/** The caller's live browser sessions; the one asking has `current`. */
export const listSessions = () => getJson('/api/me/sessions');
/** Everything held about the caller, as one JSON file the browser saves (streamed by the server). */
export const EXPORT_PATH = '/api/me/export';
/** Deletes the caller's account and erases their person: cannot be undone. */
export const deleteMe = () => request('/api/me?confirm=true', { method: 'DELETE' });
export const revokeSession = (id) => request(`/api/me/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' });

/** Every account (admins), following the pages' X-Next-Cursor. */
export async function listAccounts() {
  const accounts = [];
  let cursor = null;
  do {
    const query = cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`;
    const { data, headers } = await request(`/api/accounts${query}`);
    accounts.push(...data);
    cursor = headers.get('x-next-cursor');
  } while (cursor);
  return accounts;
}
export const changeRole = (id, role) => request(`/api/accounts/${encodeURIComponent(id)}/role`, { method: 'PUT', body: { role } })
  .then((r) => r.data);

/** The caller's own pings, each with its fix time (1 to 100): `{ accepted, ids }`. */
export const postMyLocations = (pings) => request('/api/me/locations', { method: 'POST', body: pings }).then((r) => r.data);

export const getPositions = () => getJson('/api/live/positions');
export const getHeat = (minutes) => getJson(`/api/live/heat?minutes=${encodeURIComponent(minutes)}`);
export const getZones = (minutes) => getJson(`/api/live/zones?minutes=${encodeURIComponent(minutes)}`);

let venue;
/** The venue plan, or null when the server knows none (404). Asked once per page load. */
export function getVenue() {
  venue ??= getJson('/api/venue').catch((error) => {
    if (error.status === 404) return null;
    venue = undefined; // let a later call try again
    throw error;
  });
  return venue;
}

export const liveStream = () => new EventSource('/api/live/stream');
