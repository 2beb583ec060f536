import assert from "node:assert/strict";
import { test } from "node:test";
import { createHmac } from "node:crypto";
import { Backoff, BACKOFF_MAX_MS, backoffDelay } from "../src/backoff";
import { askServer, closeOutcome, INPUT_CHUNK_BYTES, inputChunks, retryCap, SOCKET_RETRY_CAP_MS } from "../src/connection";
import { ACK_BATCH, Acks } from "../src/flow";
import { bytes, commandLine, duration, recordingCommand, relativeTime, toDate } from "../src/format";
import { base64url, newDeviceKey, proofFor } from "../src/device-key";
import { decodeFrames, encodeFrame, FrameError } from "../src/framing";
import { ApiError } from "../src/http";
import { arrowSequence, navigationSequence, SYMBOL_KEYS, withCtrl } from "../src/keys";
import { FONT_MAX, FONT_MIN, parseFontSize, stepFontSize } from "../src/prefs";
import { screenRatio } from "../src/recordings-page";
import { matchCount } from "../src/search-bar";
import { parseRoute } from "../src/router";
import { newSessionBody } from "../src/new-session-form";
import { clientsText } from "../src/session-row";
import { MIN_WATCH_FONT, sameSize, SizePolicy, watchFontSize } from "../src/size-policy";
import { copiedNote } from "../src/terminal-page";
import { jwtClaims, tokensFromResponse } from "../src/token-store";
import { asRecordings, asSession, asSessions, type Session } from "../src/types";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

function concat(...buffers: ArrayBuffer[]): ArrayBuffer {
  const total = buffers.reduce((n, b) => n + b.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    out.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  return out.buffer;
}

test("a frame round-trips, multi-byte characters included", () => {
  const frames = decodeFrames(encodeFrame("héllo ✓ 🚀"));
  assert.equal(frames.length, 1);
  assert.equal(text(frames[0]!), "héllo ✓ 🚀");
});

test("an empty payload is a valid frame", () => {
  const frames = decodeFrames(encodeFrame(""));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.length, 0);
});

test("frames back to back are all decoded", () => {
  const frames = decodeFrames(concat(encodeFrame("a"), encodeFrame("bc")));
  assert.deepEqual(frames.map(text), ["a", "bc"]);
});

test("malformed frames are rejected", () => {
  assert.throws(() => decodeFrames(new ArrayBuffer(0)), FrameError);
  assert.throws(() => decodeFrames(new Uint8Array([0xbf, 0, 0]).buffer), /truncated/);
  assert.throws(() => decodeFrames(new Uint8Array([0x00, 0, 0, 0, 0]).buffer), /magic/);
  assert.throws(() => decodeFrames(new Uint8Array([0xbf, 0, 0, 0, 5, 65]).buffer), /declares 5 bytes/);
  // The length is big-endian: 0x00000100 = 256, not 1.
  assert.throws(() => decodeFrames(new Uint8Array([0xbf, 0, 0, 1, 0, 65]).buffer), /declares 256/);
});

test("close codes: retry only what may recover", () => {
  assert.deepEqual(closeOutcome(1000, "", 3), { kind: "ended", exitCode: 3, reason: "" });
  // No exit message: the reason is not parsed; the server is asked whether the session exists.
  assert.equal(closeOutcome(1000, "session not found", null), "ask");
  assert.equal(closeOutcome(1000, "", null), "ask");
  assert.deepEqual(closeOutcome(1008, "bad token", null), { kind: "unauthorized", reason: "bad token" });
  assert.deepEqual(closeOutcome(1003, "bad json", null), { kind: "protocol-error", reason: "bad json" });
  for (const code of [1001, 1006, 1011, 1012, 4000]) assert.equal(closeOutcome(code, "", null), "retry");
});

const SESSION: Session = {
  id: "s1",
  name: "sh",
  command: "/bin/sh",
  args: ["-c", "ls"],
  cwd: "/tmp",
  cols: 80,
  rows: 24,
  status: "exited",
  exitCode: 3,
  pid: 42,
  createdAt: "2024-01-01T00:00:00.000Z",
  exitedAt: "2024-01-01T00:00:01.000Z",
  clients: 0,
};

test("a normal close without an exit message: the server says whether the session exists", async () => {
  const gone = (): Promise<Session> => Promise.reject(new ApiError(404, "session not found", "session_not_found"));
  assert.deepEqual(await askServer(gone, "whatever"), { kind: "not-found" });
  assert.deepEqual(await askServer(() => Promise.resolve(SESSION), "session ended"), {
    kind: "ended",
    exitCode: 3,
    reason: "session ended",
  });
  const down = (): Promise<Session> => Promise.reject(new ApiError(0, "Cannot reach the server", "network"));
  assert.deepEqual(await askServer(down, "x"), { kind: "ended", exitCode: null, reason: "x" });
});

test("backoff doubles from 0.5 s to at most 10 s, less up to 20 % of jitter", () => {
  const none = (): number => 0;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffDelay(n, none)),
    [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000],
  );
  assert.equal(backoffDelay(0, () => 1), 400);
  for (let n = 0; n < 200; n++) {
    const delay = backoffDelay(n % 8);
    assert.ok(delay <= BACKOFF_MAX_MS && delay >= 0.8 * Math.min(BACKOFF_MAX_MS, 500 * 2 ** (n % 8)));
  }
  const backoff = new Backoff(BACKOFF_MAX_MS, none);
  assert.deepEqual([backoff.next(), backoff.next(), backoff.attempts], [500, 1000, 2]);
  backoff.reset();
  assert.deepEqual([backoff.next(), backoff.attempts], [500, 1]);
});

test("a capped backoff never waits longer than its cap, jitter below it", () => {
  const none = (): number => 0;
  assert.deepEqual(
    [0, 1, 2, 3, 50].map((n) => backoffDelay(n, none, SOCKET_RETRY_CAP_MS)),
    [500, 1000, 1000, 1000, 1000],
  );
  assert.equal(backoffDelay(5, () => 1, SOCKET_RETRY_CAP_MS), 800);
  const backoff = new Backoff(SOCKET_RETRY_CAP_MS);
  for (let n = 0; n < 50; n++) {
    const delay = backoff.next();
    assert.ok(delay <= SOCKET_RETRY_CAP_MS && delay >= 0.4 * SOCKET_RETRY_CAP_MS, String(delay));
  }
  // One loop, a longer cap for one retry: a rate limit or server fault waits longer.
  assert.equal(new Backoff(SOCKET_RETRY_CAP_MS, none).next(), 500);
  const loop = new Backoff(SOCKET_RETRY_CAP_MS, none);
  assert.deepEqual([loop.next(), loop.next(), loop.next(), loop.next(retryCap(1011))], [500, 1000, 1000, 4000]);
  assert.deepEqual([1006, 1001, 1011].map(retryCap), [SOCKET_RETRY_CAP_MS, SOCKET_RETRY_CAP_MS, BACKOFF_MAX_MS]);
});

test("server JSON is checked before use", () => {
  assert.deepEqual(asSession(SESSION), SESSION);
  assert.deepEqual(asSessions([SESSION, { ...SESSION, cols: "80" }, null, { ...SESSION, id: "s2" }]), [
    SESSION,
    { ...SESSION, id: "s2" },
  ]);
  assert.equal(asSessions({ sessions: [] }), null);
  assert.equal(asSession({ ...SESSION, status: "paused" }), null);
  assert.equal(asSession({ ...SESSION, exitCode: true }), null);
  const [recording] = asRecordings([{ id: "r1", command: "ls", argv: ["ls"], bytes: "many" }, { name: "no id" }]) ?? [];
  assert.equal(recording?.id, "r1");
  assert.deepEqual(recording?.argv, ["ls"]);
  assert.equal(recording?.bytes, null);
  assert.equal(asRecordings("nope"), null);
});

test("sticky Ctrl turns keys into control characters", () => {
  assert.equal(withCtrl("c"), "\x03");
  assert.equal(withCtrl("C"), "\x03");
  assert.equal(withCtrl("a"), "\x01");
  assert.equal(withCtrl("["), "\x1b");
  assert.equal(withCtrl("\\"), "\x1c");
  assert.equal(withCtrl(" "), "\x00");
  assert.equal(withCtrl("?"), "\x7f");
  assert.equal(withCtrl("1"), "1");
  assert.equal(withCtrl("\x1b[A"), "\x1b[1;5A");
  assert.equal(withCtrl("\x1bOD"), "\x1b[1;5D");
  assert.equal(withCtrl("hello"), "hello"); // a paste is not a key
  assert.equal(arrowSequence("A", false), "\x1b[A");
  assert.equal(arrowSequence("A", true), "\x1bOA");
});

test("routes", () => {
  assert.deepEqual(parseRoute("/"), { page: "sessions" });
  assert.deepEqual(parseRoute("/recordings/"), { page: "recordings" });
  assert.deepEqual(parseRoute("/sessions/abc-1"), { page: "terminal", id: "abc-1" });
  assert.deepEqual(parseRoute("/sessions/a%20b"), { page: "terminal", id: "a b" });
  assert.deepEqual(parseRoute("/sessions/%E0"), { page: "not-found" });
  assert.deepEqual(parseRoute("/nope"), { page: "not-found" });
  assert.deepEqual(parseRoute("/login"), { page: "sessions" }); // where a sign-in lands
});

test("the form's command line goes to /bin/sh -c", () => {
  assert.deepEqual(newSessionBody("", "", "", null), {});
  assert.deepEqual(newSessionBody("  ls -la | wc -l ", " /tmp ", "x", { cols: 100, rows: 30 }), {
    command: "/bin/sh",
    args: ["-c", "ls -la | wc -l"],
    cwd: "/tmp",
    name: "x",
    cols: 100,
    rows: 30,
  });
  assert.equal(commandLine("/bin/sh", ["-c", "ls | wc"]), "ls | wc");
  assert.equal(commandLine("vim", ["my file.txt"]), "vim 'my file.txt'");
  // A recording's command comes from its argv, as a session's does; no string is parsed.
  assert.equal(recordingCommand({ id: "r", command: "/bin/sh -c 'ls | wc'", argv: ["/bin/sh", "-c", "ls | wc"] }), "ls | wc");
  assert.equal(recordingCommand({ id: "r", command: "vim 'my file.txt'", argv: ["vim", "my file.txt"] }), "vim 'my file.txt'");
  assert.equal(recordingCommand({ id: "r", command: "/bin/sh -c 'ls | wc'", argv: null }), "/bin/sh -c 'ls | wc'");
  assert.equal(recordingCommand({ id: "r" }), "");
});

test("formatting", () => {
  assert.equal(duration(75), "1:15");
  assert.equal(duration(3725), "1:02:05");
  assert.equal(duration(null), "—");
  assert.equal(bytes(100), "100 B");
  assert.equal(bytes(2048), "2.0 KiB");
  const now = Date.parse("2024-01-01T00:10:00Z");
  assert.equal(relativeTime("2024-01-01T00:05:00Z", now), "5 min ago");
  assert.equal(relativeTime(now / 1000 - 30, now), "30 s ago");
  assert.equal(toDate("not a date"), null);
});

function jwt(payload: object): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(payload)}.sig`;
}

test("JWT claims and token expiry", () => {
  assert.deepEqual(jwtClaims(jwt({ sub: "me", exp: 1700000000, sessionId: "s1" })), {
    sub: "me",
    exp: 1700000000,
    sessionId: "s1",
  });
  assert.equal(jwtClaims("not-a-jwt"), null);
  const tokens = tokensFromResponse({ accessToken: jwt({ sub: "me" }), refreshToken: "r", expiresIn: 900 }, 1000);
  assert.deepEqual(tokens, { accessToken: tokens.accessToken, renewable: true, expiresAt: 901000, sessionId: null });
  // A sign-in of one tab (no device key) keeps its refresh token, in memory.
  const tabOnly = tokensFromResponse({ accessToken: jwt({ sub: "me" }), refreshToken: "r", expiresIn: 900 }, 1000, true);
  assert.equal(tabOnly.refreshToken, "r");
});

test("the device key's proof is base64url(HMAC-SHA256(key, nonce + ' ' + purpose))", async () => {
  const raw = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  assert.equal(base64url(raw), Buffer.from(raw).toString("base64url"));
  const expected = createHmac("sha256", raw).update("the-nonce logout").digest("base64url");
  assert.equal(await proofFor(key, "the-nonce", "logout"), expected);
  assert.equal(key.extractable, false);
  const made = await newDeviceKey();
  assert.equal(Buffer.from(made.text, "base64url").length, 32);
  assert.match(made.text, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(made.key.extractable, false);
});

test("a big paste is cut into input messages under the server's limit, in order", () => {
  const utf8 = (s: string): number => Buffer.byteLength(JSON.stringify({ type: "input", data: s }));
  const ascii = "x".repeat(1_000_000);
  const mixed = "é✓🚀\x1b[0m\"\\\n".repeat(60_000); // 2, 3, 4 (a pair), 6, 1, 2, 2 bytes
  for (const paste of [ascii, mixed, "\x1b".repeat(300_000), "🚀".repeat(200_000)]) {
    const chunks = inputChunks(paste);
    assert.ok(chunks.length > 1);
    assert.equal(chunks.join(""), paste); // nothing lost, nothing reordered
    for (const chunk of chunks) {
      assert.ok(utf8(chunk) <= INPUT_CHUNK_BYTES + 40, `${utf8(chunk)} bytes`); // 40: the envelope
      assert.ok(chunk.length > 0);
      // Never between the halves of a pair: each chunk is well-formed on its own.
      assert.equal(Buffer.from(chunk, "utf8").toString("utf8"), chunk);
    }
  }
  // Worst case, every piece still far under the server's 1 MiB.
  assert.ok(INPUT_CHUNK_BYTES + 40 < 1024 * 1024);
  assert.deepEqual(inputChunks("ls -la\r"), ["ls -la\r"]);
  assert.deepEqual(inputChunks(""), []);
  assert.deepEqual(inputChunks("a🚀b", 4), ["a", "🚀", "b"]);
  assert.deepEqual(inputChunks("ab🚀", 5), ["ab", "🚀"]);
  // A lone surrogate stays as it is (the server refuses it, with 1003, as before).
  assert.equal(inputChunks("a\ud800b").join(""), "a\ud800b");
});

test("size: a client that only watches never resizes", () => {
  const policy = new SizePolicy(false);
  assert.equal(policy.mode, "watch");
  assert.equal(policy.heard({ cols: 120, rows: 40 }), false);
  assert.equal(policy.fitted({ cols: 50, rows: 30 }), null); // a window change is not typing
  assert.deepEqual(policy.session, { cols: 120, rows: 40 });
});

test("size: typing takes the size; another device's resize hands it back", () => {
  const policy = new SizePolicy(false);
  policy.heard({ cols: 120, rows: 40 });
  assert.equal(policy.drive(false), true);
  assert.equal(policy.drive(false), false); // already driving: no refit per key
  assert.deepEqual(policy.fitted({ cols: 50, rows: 30 }), { cols: 50, rows: 30 });
  assert.equal(policy.fitted({ cols: 50, rows: 30 }), null); // sent already
  // News from before our resize came back is not a takeover.
  assert.equal(policy.heard({ cols: 120, rows: 40 }), false);
  assert.equal(policy.awaitingEcho, true);
  assert.equal(policy.heard({ cols: 50, rows: 30 }), false);
  assert.equal(policy.awaitingEcho, false);
  assert.equal(policy.heard({ cols: 50, rows: 30 }), false); // a client joined: same size
  assert.equal(policy.heard({ cols: 100, rows: 35 }), true); // another device typed
  assert.equal(policy.mode, "watch");
  assert.equal(policy.fitted({ cols: 50, rows: 30 }), null);
  assert.equal(policy.drive(false), true); // and typing here takes it back
  assert.deepEqual(policy.fitted({ cols: 50, rows: 30 }), { cols: 50, rows: 30 });
});

test("size: fitting to the size the session has sends nothing", () => {
  const policy = new SizePolicy(false);
  policy.heard({ cols: 80, rows: 24 });
  policy.drive(true);
  assert.equal(policy.fitted({ cols: 80, rows: 24 }), null);
  assert.equal(policy.awaitingEcho, false);
  assert.equal(policy.heard({ cols: 80, rows: 24 }), false);
});

test("size: a read-only client never drives", () => {
  const policy = new SizePolicy(true);
  assert.equal(policy.drive(true), false);
  assert.equal(policy.drive(false), false);
  assert.equal(policy.canTakeOver, false);
  assert.equal(policy.fitted({ cols: 10, rows: 10 }), null);
});

test("size: a resize the server keeps refusing (vt) turns typing back into watching", () => {
  const policy = new SizePolicy(false);
  policy.heard({ cols: 100, rows: 30 });
  policy.drive(false);
  policy.fitted({ cols: 60, rows: 20 });
  assert.equal(policy.echoTimedOut({ cols: 100, rows: 30 }), true);
  assert.equal(policy.mode, "watch");
  assert.equal(policy.canTakeOver, false);
  assert.equal(policy.drive(false), false); // typing no longer tries
  assert.equal(policy.drive(true), true); // Fit still does
  assert.deepEqual(policy.fitted({ cols: 60, rows: 20 }), { cols: 60, rows: 20 });
  assert.equal(policy.echoTimedOut({ cols: 60, rows: 20 }), false); // this time it was taken
  assert.equal(policy.mode, "drive");
});

test("size: a watcher shows a larger session whole, down to a floor, then scrolls", () => {
  assert.equal(watchFontSize(14, { cols: 130, rows: 50 }, { cols: 120, rows: 40 }), 14);
  assert.equal(watchFontSize(14, { cols: 60, rows: 50 }, { cols: 120, rows: 40 }), 7);
  assert.equal(watchFontSize(14, { cols: 100, rows: 20 }, { cols: 120, rows: 40 }), 7);
  assert.equal(watchFontSize(12, { cols: 50, rows: 60 }, { cols: 120, rows: 40 }), 5);
  assert.equal(watchFontSize(12, { cols: 20, rows: 60 }, { cols: 300, rows: 40 }), MIN_WATCH_FONT);
  assert.ok(sameSize({ cols: 1, rows: 2 }, { cols: 1, rows: 2 }) && !sameSize(null, { cols: 1, rows: 2 }));
});

test("paging keys follow the cursor-key mode where xterm does", () => {
  assert.equal(navigationSequence("PageUp", false), "\x1b[5~");
  assert.equal(navigationSequence("PageDown", true), "\x1b[6~");
  assert.equal(navigationSequence("Home", false), "\x1b[H");
  assert.equal(navigationSequence("Home", true), "\x1bOH");
  assert.equal(navigationSequence("End", false), "\x1b[F");
  assert.equal(navigationSequence("End", true), "\x1bOF");
  assert.deepEqual(
    SYMBOL_KEYS.map(([symbol]) => symbol),
    ["|", "/", "~", "-", "_"],
  );
});

test("font size: remembered within bounds, stepped within bounds", () => {
  assert.equal(parseFontSize(null, 14), 14);
  assert.equal(parseFontSize("16", 14), 16);
  for (const bad of ["", "abc", "15.5", "2", "99"]) assert.equal(parseFontSize(bad, 14), 14, bad);
  assert.equal(stepFontSize(14, 1), 15);
  assert.equal(stepFontSize(FONT_MAX, 1), FONT_MAX);
  assert.equal(stepFontSize(FONT_MIN, -1), FONT_MIN);
});

test("the words of the terminal page's tools", () => {
  assert.equal(copiedNote("one line", false), "Copied");
  assert.equal(copiedNote("a\nb\nc", false), "Copied 3 lines");
  assert.equal(copiedNote("a\nb", true), "Copied the screen");
  assert.equal(matchCount("", 0, 0), "");
  assert.equal(matchCount("x", -1, 0), "No matches");
  assert.equal(matchCount("x", 2, 7), "3 of 7");
  assert.equal(matchCount("x", -1, 1000), "1000+ matches");
  assert.equal(clientsText(0), "none");
  assert.equal(clientsText(3), "3");
});

test("a recording's player is as tall as its terminal's shape", () => {
  assert.ok(Math.abs(screenRatio("80x24") - (24 * 1.333) / (80 * 0.6)) < 1e-9);
  assert.ok(screenRatio("200x50") < screenRatio("80x24"));
  assert.equal(screenRatio(null), screenRatio("80x24"));
  assert.equal(screenRatio("0x0"), screenRatio("80x24"));
});

test("acks: the total written, once a batch of it is written, never going back", () => {
  const acks = new Acks();
  assert.equal(acks.wrote(5), null); // an echo: acked with a later batch
  assert.equal(acks.wrote(ACK_BATCH - 6), null);
  assert.equal(acks.wrote(1), ACK_BATCH);
  assert.equal(acks.wrote(ACK_BATCH - 1), null);
  assert.equal(acks.wrote(3 * ACK_BATCH), 5 * ACK_BATCH - 1);
  assert.equal(acks.wrote(0), null);
});
