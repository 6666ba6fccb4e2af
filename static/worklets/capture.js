// Microphone capture: the context's float samples → 24 kHz PCM16 LE, posted in 20 ms frames (480 samples).
// When the AudioContext already runs at 24 kHz the resampler is a straight copy.
const TARGET_RATE = 24000;
const FRAME = 480;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.pos = 0; // fractional read position into the pending input
    this.pending = new Float32Array(0);
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
    this.levelSum = 0;
    this.levelCount = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    const merged = new Float32Array(this.pending.length + input.length);
    merged.set(this.pending);
    merged.set(input, this.pending.length);
    let pos = this.pos;
    while (pos + 1 < merged.length || (this.step === 1 && pos < merged.length)) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = merged[i];
      const b = i + 1 < merged.length ? merged[i + 1] : a;
      const s = Math.max(-1, Math.min(1, a + (b - a) * frac));
      this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      this.levelSum += s * s;
      this.levelCount++;
      if (this.filled === FRAME) {
        const out = this.frame.buffer.slice(0);
        this.port.postMessage({ type: "audio", buffer: out }, [out]);
        this.filled = 0;
        this.port.postMessage({ type: "level", rms: Math.sqrt(this.levelSum / this.levelCount) });
        this.levelSum = 0;
        this.levelCount = 0;
      }
      pos += this.step;
    }
    const keep = Math.floor(pos);
    this.pending = merged.slice(keep);
    this.pos = pos - keep;
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
