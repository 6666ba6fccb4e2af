// Agent audio playback: 24 kHz PCM16 chunks tagged with their realtime item id, played from a small
// jitter buffer. Reports how many ms of each item were actually played (for barge-in truncation), says
// when the buffer ran dry ("idle"), and drops everything at once on "clear".
const SOURCE_RATE = 24000;
const PREBUFFER_MS = 60;
const REPORT_EVERY_MS = 40;

class PcmPlayback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // {item, samples: Float32Array (source rate), offset}
    this.buffered = 0; // source samples queued
    this.playing = false;
    this.step = SOURCE_RATE / sampleRate; // source samples per output sample
    this.frac = 0;
    this.played = new Map(); // item → source samples played
    this.item = null;
    this.totalSamples = 0;
    this.peakRms = 0;
    this.waitQuanta = 0;
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "audio") {
      const pcm = new Int16Array(msg.buffer);
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
      this.queue.push({ item: msg.item, samples, offset: 0 });
      this.buffered += samples.length;
    } else if (msg.type === "clear") {
      this.queue = [];
      this.buffered = 0;
      this.playing = false;
      this.report({ cleared: true, idle: true });
    }
  }

  msPlayed(item) {
    return Math.floor(((this.played.get(item) || 0) * 1000) / SOURCE_RATE);
  }

  report(extra) {
    if (this.item !== null) {
      this.port.postMessage({ type: "played", item_id: this.item, ms: this.msPlayed(this.item), ...extra });
    } else if (extra.cleared) {
      this.port.postMessage({ type: "played", ms: 0, ...extra });
    }
    this.port.postMessage({ type: "stats", samples: this.totalSamples, peakRms: this.peakRms });
    this.sinceReport = 0;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    if (!this.playing && this.buffered > 0) {
      // Start once a little is buffered, or when no more arrives soon (a very short item).
      this.waitQuanta++;
      const waitedMs = (this.waitQuanta * out.length * 1000) / sampleRate;
      if ((this.buffered * 1000) / SOURCE_RATE >= PREBUFFER_MS || waitedMs >= 100) {
        this.playing = true;
        this.waitQuanta = 0;
      }
    }
    if (!this.playing) return true;
    let energy = 0;
    let written = 0;
    for (let i = 0; i < out.length && this.queue.length; i++) {
      const head = this.queue[0];
      if (this.item !== head.item) this.item = head.item;
      const s = head.samples[head.offset];
      out[i] = s;
      energy += s * s;
      written++;
      this.frac += this.step;
      while (this.frac >= 1 && this.queue.length) {
        this.frac -= 1;
        const h = this.queue[0];
        h.offset++;
        this.buffered--;
        this.played.set(h.item, (this.played.get(h.item) || 0) + 1);
        this.totalSamples++;
        if (h.offset >= h.samples.length) this.queue.shift();
      }
    }
    if (written) this.peakRms = Math.max(this.peakRms, Math.sqrt(energy / written));
    this.sinceReport += (out.length * 1000) / sampleRate;
    if (!this.queue.length) {
      this.playing = false;
      this.report({ idle: true });
    } else if (this.sinceReport >= REPORT_EVERY_MS) {
      this.report({});
    }
    return true;
  }
}

registerProcessor("pcm-playback", PcmPlayback);
