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

async function request(path) {
  let response;
  try {
    response = await fetch(path, { headers: { accept: 'application/json' } });
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
  return { data: await response.json(), headers: response.headers };
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

export const getSummary = (id) => getJson(`/api/persons/${encodeURIComponent(id)}/summary`);

/** Contacts of a person over tracks; `params`: start, end, distance, max_interpolation, min_duration. */
export const getContacts = (id, params) =>
  getJson(`/api/persons/${encodeURIComponent(id)}/contacts?${new URLSearchParams(params)}`);

export const getPositions = () => getJson('/api/live/positions');
export const getHeat = (minutes) => getJson(`/api/live/heat?minutes=${encodeURIComponent(minutes)}`);

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
