// The API client: the key lives in session storage (never in a URL or the DOM), every request sends
// it as a bearer token, and every failure becomes an `ApiProblem` read from the server's RFC 9457
// problem+json. The types are generated from the server's OpenAPI document (src/openapi.d.ts).

import type { components } from "./openapi";

export type Schemas = components["schemas"];

const KEY = "vantage.api-key";
const BASE = "/api/v1";

/** A failed request, as the server explained it. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly code: string,
    readonly retryAfter: number | null = null,
    readonly fields: Schemas["FieldError"][] | null = null,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function signIn(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

type Query = Record<string, string | number | boolean | null | undefined>;

function url(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(name, String(value));
  }
  const search = params.toString();
  return `${BASE}${path}${search ? `?${search}` : ""}`;
}

async function problem(response: Response): Promise<ApiProblem> {
  const retry = Number(response.headers.get("Retry-After"));
  const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : null;
  try {
    const body = (await response.json()) as Partial<Schemas["Problem"]>;
    return new ApiProblem(
      response.status,
      body.title ?? response.statusText,
      body.detail ?? "",
      body.code ?? "",
      retryAfter,
      body.errors ?? null,
    );
  } catch {
    return new ApiProblem(response.status, response.statusText || "Request failed", "", "", retryAfter);
  }
}

/** A request to the API; the parsed JSON body on success. */
export async function call<T>(
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  options: { query?: Query; body?: unknown; idempotent?: boolean } = {},
): Promise<T> {
  const response = await send(method, path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** The raw response of a request (downloads, and Retry-After when polling). */
export async function send(
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  options: { query?: Query; body?: unknown; idempotent?: boolean } = {},
): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.idempotent) headers["Idempotency-Key"] = randomKey();
  let response: Response;
  try {
    response = await fetch(url(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiProblem(0, "The server did not answer", "Check that Vantage is running and reachable.", "network");
  }
  if (!response.ok) throw await problem(response);
  return response;
}

/** 128 random bits in hex (`crypto.randomUUID` exists only in secure contexts). */
function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Path segment, escaped. */
export const seg = encodeURIComponent;
