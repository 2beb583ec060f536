/**
 * The key this browser's sign-in is bound to (the server's auth/proof.py says why). Browsers
 * send a host's cookies to every port of it, so the refresh cookie alone must open nothing:
 * each use of it carries a proof made with this key, and the key lives where only this origin
 * reaches: IndexedDB, per scheme, host and port. It is an HMAC key, imported non-extractable,
 * so a script injected later can use it while it runs but never read it out; the raw bytes
 * exist only while signing in. Shared by the browser's tabs, and kept across reloads.
 */

const DB_NAME = "vibetunnel";
const STORE = "keys";
const ENTRY = "device";
const KEY_BYTES = 32;

/** A new device key: the base64url the server is sent at sign-in, and the key kept here. */
export interface NewDeviceKey {
  text: string;
  key: CryptoKey;
}

/**
 * Whether this page can bind a sign-in to a key: `crypto.subtle` exists in secure contexts
 * only (HTTPS, and http://127.0.0.1 or localhost), and IndexedDB must open (not in every
 * private mode). Elsewhere the app signs in for this tab only.
 */
export async function deviceKeysAvailable(): Promise<boolean> {
  if (!globalThis.isSecureContext || !globalThis.crypto?.subtle || typeof indexedDB === "undefined") return false;
  try {
    (await openDb()).close();
    return true;
  } catch {
    return false;
  }
}

export async function newDeviceKey(): Promise<NewDeviceKey> {
  const bytes = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  const key = await crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const text = base64url(bytes);
  bytes.fill(0); // the server has its copy; ours lives on as the non-extractable key only
  return { text, key };
}

/** The key of this browser's sign-in, or null when it has none (or IndexedDB fails). */
export async function loadDeviceKey(): Promise<CryptoKey | null> {
  try {
    const value = await inStore("readonly", (store) => store.get(ENTRY));
    return value instanceof CryptoKey ? value : null;
  } catch {
    return null;
  }
}

export async function saveDeviceKey(key: CryptoKey): Promise<void> {
  await inStore("readwrite", (store) => store.put(key, ENTRY));
}

/** Forget the key: the cookie, if any is left, then opens nothing in this browser either. */
export async function dropDeviceKey(): Promise<void> {
  try {
    await inStore("readwrite", (store) => store.delete(ENTRY));
  } catch {
    // Nothing to forget, or nowhere to forget it from.
  }
}

/** base64url(HMAC-SHA256(key, nonce + " " + purpose)): the proof the server checks. */
export async function proofFor(key: CryptoKey, nonce: string, purpose: "refresh" | "logout"): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${nonce} ${purpose}`));
  return base64url(new Uint8Array(mac));
}

export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(DB_NAME, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error ?? new Error("IndexedDB did not open"));
    opening.onblocked = () => reject(new Error("IndexedDB is blocked"));
  });
}

async function inStore(mode: IDBTransactionMode, use: (store: IDBObjectStore) => IDBRequest): Promise<unknown> {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = use(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  } finally {
    db.close();
  }
}
