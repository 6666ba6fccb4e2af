// The browser test call: microphone → 24 kHz PCM16 frames over the call WebSocket, agent audio back
// through a playback worklet, live captions, a level meter, and clear call states. Plain JS, no build.
(() => {
  const root = document.getElementById("test-call");
  if (!root) return;
  const $ = (sel) => root.querySelector(sel);
  const startBtn = $("#call-start");
  const hangupBtn = $("#call-hangup");
  const stateEl = $("#call-state");
  const noticeEl = $("#call-notice");
  const captionsEl = $("#call-captions");
  const meterEl = $("#mic-level");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  // The page's words in the owner's language (templates/test.html data-words); English when a word is missing.
  const WORDS = JSON.parse(root.dataset.words || "{}");
  const t = (english) => WORDS[english] || english;
  const STATE_TEXT = {
    idle: t("Ready"), connecting: t("Connecting…"), listening: t("Listening"), speaking: t("Agent speaking"),
    ended: t("Call ended"),
  };

  let ws = null;
  let ctx = null;
  let mic = null;
  let playNode = null;
  let captureNode = null;
  let currentItem = null;
  let partial = { caller: null, agent: null };

  function setState(state) {
    root.dataset.state = state;
    stateEl.textContent = STATE_TEXT[state] || state;
    startBtn.disabled = state !== "idle" && state !== "ended";
    hangupBtn.disabled = state === "idle" || state === "ended";
  }

  function notice(message, kind) {
    noticeEl.textContent = message;
    noticeEl.hidden = !message;
    noticeEl.className = "notice " + (kind || "");
  }

  function caption(role, text, final) {
    let line = partial[role];
    if (!line) {
      line = document.createElement("p");
      line.className = "caption " + role;
      line.innerHTML = '<span class="who"></span> <span class="said"></span>';
      line.querySelector(".who").textContent = role === "agent" ? t("Receptionist:") : t("You:");
      captionsEl.appendChild(line);
      partial[role] = line;
    }
    line.querySelector(".said").textContent = text;
    if (final) {
      line.classList.add("final");
      partial[role] = null;
    }
    captionsEl.scrollTop = captionsEl.scrollHeight;
  }

  async function audioGraph() {
    // A 24 kHz context makes the browser do the resampling; the worklets resample themselves otherwise.
    try {
      ctx = new AudioContext({ sampleRate: 24000 });
    } catch (_e) {
      ctx = new AudioContext();
    }
    await ctx.audioWorklet.addModule(root.dataset.captureWorklet);
    await ctx.audioWorklet.addModule(root.dataset.playbackWorklet);
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const source = ctx.createMediaStreamSource(mic);
    captureNode = new AudioWorkletNode(ctx, "pcm-capture", { numberOfOutputs: 1, outputChannelCount: [1] });
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(captureNode).connect(mute).connect(ctx.destination); // keeps the capture node pulled
    playNode = new AudioWorkletNode(ctx, "pcm-playback", { numberOfInputs: 0, outputChannelCount: [1] });
    playNode.connect(ctx.destination);
    root.dataset.sampleRate = String(ctx.sampleRate);

    captureNode.port.onmessage = (e) => {
      const msg = e.data;
      if (msg.type === "audio" && ws && ws.readyState === WebSocket.OPEN) {
        ws.send(msg.buffer);
        root.dataset.micFrames = String(Number(root.dataset.micFrames || 0) + 1);
      } else if (msg.type === "level") {
        meterEl.value = Math.min(1, msg.rms * 4);
      }
    };
    playNode.port.onmessage = (e) => {
      const msg = e.data;
      if (msg.type === "played") {
        if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
        if (msg.item_id) root.dataset["played_" + msg.item_id] = String(msg.ms);
        if (msg.cleared) root.dataset.clears = String(Number(root.dataset.clears || 0) + 1);
        if (msg.cleared && msg.item_id) {
          root.dataset.lastClearItem = msg.item_id;
          root.dataset.lastClearMs = String(msg.ms);
        }
      } else if (msg.type === "stats") {
        root.dataset.playedSamples = String(msg.samples);
        root.dataset.playedPeakRms = String(msg.peakRms.toFixed(4));
      }
    };
  }

  function onControl(msg) {
    switch (msg.type) {
      case "item":
        currentItem = msg.item_id;
        break;
      case "clear":
        playNode.port.postMessage({ type: "clear" });
        break;
      case "transcript":
        caption(msg.role, msg.text, msg.final);
        break;
      case "state":
        setState(msg.state);
        break;
      case "notice":
        notice(msg.message, "bad");
        break;
      case "end":
        root.dataset.endReason = msg.reason;
        break;
      default:
        break;
    }
  }

  const CLOSE_TEXT = {
    4401: t("This call link has expired. Start the call again."),
    4403: t("This call link is not valid."),
    4409: t("This call link was already used. Start the call again."),
  };

  function teardown() {
    if (mic) mic.getTracks().forEach((t) => t.stop());
    if (ctx) ctx.close();
    mic = null;
    ctx = null;
  }

  async function start() {
    notice("");
    captionsEl.textContent = "";
    partial = { caller: null, agent: null };
    setState("connecting");
    let session;
    try {
      // The microphone first: a refused microphone must not leave a session behind waiting for a caller.
      await audioGraph();
      // Who the receptionist takes the caller for (issue 8): a customer, a new number, or a withheld one.
      const callerEl = document.getElementById("test-caller");
      const phoneEl = document.getElementById("test-caller-phone");
      const res = await fetch("/api/sessions", {
        method: "POST",
        headers: { "x-csrftoken": csrf, "content-type": "application/json" },
        body: JSON.stringify({ caller: callerEl ? callerEl.value : "withheld", phone: phoneEl ? phoneEl.value : "" }),
        credentials: "same-origin",
      });
      if (!res.ok) {
        let detail = "";
        try { detail = (await res.json()).error || ""; } catch (_e) { /* not JSON */ }
        throw new Error(detail || t("The service refused to start a call (%(status)s).").replace("%(status)s", res.status));
      }
      session = await res.json();
    } catch (err) {
      notice(err.name === "NotAllowedError" ? t("Microphone access was refused.") : String(err.message || err), "bad");
      teardown();
      setState("ended");
      return;
    }
    root.dataset.sessionId = session.session_id;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + session.ws_url);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        try {
          onControl(JSON.parse(e.data));
        } catch (_e) {
          /* not ours: ignore */
        }
      } else if (playNode) {
        playNode.port.postMessage({ type: "audio", item: currentItem, buffer: e.data }, [e.data]);
      }
    };
    ws.onclose = (e) => {
      if (CLOSE_TEXT[e.code]) notice(CLOSE_TEXT[e.code], "bad");
      else showRecord(session.session_id);
      root.dataset.closeCode = String(e.code);
      teardown();
      setState("ended");
    };
  }

  // When the call ends, point at its record (transcript, summary, cost, recording when turned on).
  function showRecord(sessionId) {
    const link = document.getElementById("call-record");
    if (!link) return;
    link.href = "/sessions/" + sessionId + "/record";
    link.hidden = false;
  }

  function hangUp() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "hangup" }));
    setState("ended");
  }

  startBtn.addEventListener("click", start);
  hangupBtn.addEventListener("click", hangUp);
  setState("idle");
})();
