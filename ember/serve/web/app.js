// ember's web chat page: keeps the conversation in memory, sends it to
// /v1/chat/completions with stream: true and renders the server-sent events
// token by token. Model output is only ever set with textContent (never
// innerHTML), so whatever the model writes is shown as text, never run.
"use strict";

const $ = (id) => document.getElementById(id);
const settingsKey = "ember-chat-settings";
let history = [];        // [{role, content}] sent with every request
let controller = null;   // AbortController of the reply being streamed
let modelName = null;
let chatId = 0;          // bumped by "New chat", so a reply still arriving from the old chat is dropped

function loadSettings() {
  try {
    const s = JSON.parse(localStorage.getItem(settingsKey) || "{}");
    if (typeof s.system === "string") $("system").value = s.system;
    if (typeof s.temperature === "number") $("temperature").value = s.temperature;
    if (typeof s.maxTokens === "number") $("max-tokens").value = s.maxTokens;
    if (typeof s.apiKey === "string") $("api-key").value = s.apiKey;
  } catch (e) { /* unreadable settings: keep the defaults */ }
  $("temperature-value").textContent = $("temperature").value;
}

function saveSettings() {
  $("temperature-value").textContent = $("temperature").value;
  localStorage.setItem(settingsKey, JSON.stringify({
    system: $("system").value, temperature: Number($("temperature").value),
    maxTokens: Number($("max-tokens").value), apiKey: $("api-key").value,
  }));
}

function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("api-key").value) h["Authorization"] = "Bearer " + $("api-key").value;
  return h;
}

function setStatus(text) { $("status").textContent = text; }

function addMessage(role, text) {
  $("empty").hidden = true;
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("messages").appendChild(div);
  div.scrollIntoView({block: "end"});
  return div;
}

function addNote(div, text) {
  const note = document.createElement("span");
  note.className = "note";
  note.textContent = text;
  div.appendChild(note);
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (e) { /* not JSON */ }
  return "HTTP " + response.status;
}

async function fetchModel() {
  try {
    const r = await fetch("/v1/models", {headers: headers()});
    if (!r.ok) {
      setStatus(r.status === 401 ? "This server needs an API key: open Settings." : await errorMessage(r));
      return null;
    }
    const body = await r.json();
    modelName = body.data[0].id;
    $("model").textContent = modelName;
    setStatus("");
    return modelName;
  } catch (e) {
    setStatus("Cannot reach the server.");
    return null;
  }
}

function streaming(on) {
  $("send").disabled = on;
  $("stop").hidden = !on;
}

// Reads the SSE stream and calls onDelta(text) per content delta; returns the finish_reason.
async function readStream(response, onDelta) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", finish = null;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;  // ": keep-alive" comments
        const data = line.slice(6);
        if (data === "[DONE]") return finish;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) continue;
        if (choice.delta && choice.delta.content) onDelta(choice.delta.content);
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  }
  return finish;
}

async function send(text) {
  if (!modelName && !(await fetchModel())) return;
  const myChat = chatId;
  history.push({role: "user", content: text});
  addMessage("user", text);
  const messages = [];
  if ($("system").value.trim()) messages.push({role: "system", content: $("system").value});
  messages.push(...history);
  const div = addMessage("assistant", "");
  div.classList.add("streaming");
  let reply = "";
  controller = new AbortController();
  streaming(true);
  setStatus("");
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({
        model: modelName, messages, stream: true,
        temperature: Number($("temperature").value), max_tokens: Number($("max-tokens").value),
      }),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    const finish = await readStream(response, (delta) => {
      reply += delta;
      div.textContent = reply;
      div.scrollIntoView({block: "end"});
    });
    if (finish === "length") addNote(div, "cut at the token limit");
  } catch (e) {
    if (e.name === "AbortError") {
      addNote(div, "stopped");
    } else {
      div.remove();
      addMessage("error", e.message);
      if (myChat === chatId) history.pop();  // the question was not answered; it can be asked again
      return;
    }
  } finally {
    div.classList.remove("streaming");
    controller = null;
    streaming(false);
  }
  if (myChat === chatId) history.push({role: "assistant", content: reply});
}

function newChat() {
  if (controller) controller.abort();
  chatId += 1;
  history = [];
  for (const m of [...document.querySelectorAll("#messages .msg")]) m.remove();
  $("empty").hidden = false;
  setStatus("");
  $("input").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  loadSettings();
  for (const id of ["system", "temperature", "max-tokens", "api-key"]) $(id).addEventListener("input", saveSettings);
  $("api-key").addEventListener("change", fetchModel);
  $("settings-toggle").addEventListener("click", () => {
    const panel = $("settings");
    panel.hidden = !panel.hidden;
    $("settings-toggle").setAttribute("aria-expanded", String(!panel.hidden));
  });
  $("new-chat").addEventListener("click", newChat);
  $("stop").addEventListener("click", () => { if (controller) controller.abort(); });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("input").value.trim();
    if (!text || controller) return;
    $("input").value = "";
    send(text);
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  fetchModel();
  $("input").focus();
});
