"""The web UI's Live tab: the browser's microphone converted over a WebSocket.

`build_live_tab(service)` (called by `sovits.webui.app` inside its Blocks) lays out the
model, speaker, transpose, f0 method, block size, low-latency and gate controls, and
Start / Stop buttons whose JavaScript does the streaming in the browser: it opens
/api/v1/live (`sovits.server.live`), captures the microphone with an AudioContext at
the model's rate, sends blocks of float32 samples, plays the converted blocks back
and shows the algorithmic latency, the server's compute time per block and the
measured round trip of a block. Everything received is also kept in
`window.sovitsLive.received` (Float32Array blocks), which the browser test reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sovits.api import JobService

__all__ = ["START_JS", "STOP_JS", "build_live_tab"]

_INTRO = (
    "Sing into the microphone and hear the model's voice. Use headphones (the speakers "
    "would feed back into the microphone). The stream runs at the model's sample rate; "
    "the latency shown is the algorithmic one (block + crossfade + search + frame "
    "rounding) plus the measured round trip of a block to the server and back; the "
    "browser's and the sound card's own buffering add to what you hear."
)

START_JS = r"""
(model, speaker, transpose, f0Method, blockMs, lowLatency, gate) => {
  const live = window.sovitsLive || (window.sovitsLive = {});
  if (live.running) { return []; }
  const status = (text) => {
    const node = document.querySelector('#live-status');
    if (node) { node.innerText = text; }
  };
  Object.assign(live, {running: true, received: [], sent: 0, error: null, ready: null,
                       stats: null, roundTrip: null});
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/live`);
  ws.binaryType = 'arraybuffer';
  live.ws = ws;
  const queue = [];
  const sentAt = [];
  const show = () => {
    const parts = [];
    if (live.ready) {
      parts.push(`algorithmic latency ${live.ready.algorithmic_latency_ms.toFixed(1)} ms`);
    }
    if (live.stats) {
      const stats = live.stats;
      parts.push(`compute ${stats.compute_ms_mean.toFixed(1)} ms per block ` +
                 `(p95 ${stats.compute_ms_p95.toFixed(1)}, ` +
                 `real-time factor ${stats.rtf.toFixed(2)})`);
    }
    if (live.roundTrip !== null) {
      parts.push(`round trip of a block ${live.roundTrip.toFixed(0)} ms`);
    }
    status(parts.join(' · ') || 'connecting');
  };
  const stop = () => {
    if (live.node) { live.node.disconnect(); live.node = null; }
    if (live.stream) {
      live.stream.getTracks().forEach((track) => track.stop());
      live.stream = null;
    }
    if (live.ctx) { live.ctx.close(); live.ctx = null; }
    if (ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({type: 'stop'})); }
    live.running = false;
  };
  live.stop = stop;
  const startAudio = async (ready) => {
    const ctx = new AudioContext({sampleRate: ready.sample_rate, latencyHint: 'interactive'});
    live.ctx = ctx;
    const stream = await navigator.mediaDevices.getUserMedia({audio: {
      echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1}});
    live.stream = stream;
    const source = ctx.createMediaStreamSource(stream);
    const node = ctx.createScriptProcessor(1024, 1, 1);
    let pending = new Float32Array(0);
    node.onaudioprocess = (event) => {
      const input = event.inputBuffer.getChannelData(0);
      const merged = new Float32Array(pending.length + input.length);
      merged.set(pending);
      merged.set(input, pending.length);
      let offset = 0;
      while (merged.length - offset >= ready.block_samples) {
        const chunk = merged.slice(offset, offset + ready.block_samples);
        if (ws.readyState === WebSocket.OPEN) {
          ws.send(chunk.buffer);
          sentAt.push(performance.now());
          live.sent += chunk.length;
        }
        offset += ready.block_samples;
      }
      pending = merged.slice(offset);
      const out = event.outputBuffer.getChannelData(0);
      let filled = 0;
      while (filled < out.length && queue.length) {
        const head = queue[0];
        const take = Math.min(head.length, out.length - filled);
        out.set(head.subarray(0, take), filled);
        filled += take;
        if (take === head.length) { queue.shift(); } else { queue[0] = head.subarray(take); }
      }
      out.fill(0, filled);
    };
    source.connect(node);
    node.connect(ctx.destination);
    live.node = node;
    await ctx.resume();
    show();
  };
  ws.onopen = () => {
    ws.send(JSON.stringify({
      model: model,
      options: {speaker: speaker, transpose: Number(transpose), f0_method: f0Method},
      settings: {block_ms: lowLatency ? null : Number(blockMs), low_latency: !!lowLatency,
                 gate: !!gate},
    }));
    status('connecting');
  };
  ws.onmessage = (event) => {
    if (typeof event.data === 'string') {
      const message = JSON.parse(event.data);
      if (message.type === 'ready') {
        live.ready = message;
        startAudio(message).catch((error) => {
          live.error = {message: String(error)};
          status(`error: ${error}`);
          stop();
        });
      } else if (message.type === 'stats' || message.type === 'done') {
        live.stats = message;
        show();
      } else if (message.type === 'error') {
        live.error = message.error;
        const hint = message.error.hint ? ` (${message.error.hint})` : '';
        status(`error: ${message.error.message}${hint}`);
        stop();
      }
      return;
    }
    const block = new Float32Array(event.data);
    live.received.push(block);
    const began = sentAt.shift();
    if (began !== undefined) { live.roundTrip = performance.now() - began; }
    queue.push(block);
  };
  ws.onclose = () => { if (live.running) { stop(); } };
  ws.onerror = () => { status('error: the live connection failed'); };
  return [];
}
"""

STOP_JS = r"""
() => {
  if (window.sovitsLive && window.sovitsLive.stop) { window.sovitsLive.stop(); }
  return [];
}
"""


def build_live_tab(service: JobService) -> dict[str, Any]:
    """The Live tab's components inside the current Blocks; returns them by name."""
    import gradio as gr

    from sovits.features.pitch.registry import PITCH_METHODS

    models = service.models()
    names = [info.name for info in models]
    first = models[0] if models else None

    def speakers_of(name: str | None) -> Any:
        for info in service.models():
            if info.name == name:
                choices = list(info.speakers)
                return gr.Dropdown(choices=choices, value=choices[0] if choices else None)
        return gr.Dropdown(choices=[], value=None)

    gr.Markdown(_INTRO, elem_id="live-intro")
    with gr.Row():
        model = gr.Dropdown(names, value=names[0] if names else None, label="Model",
                            elem_id="live-model", allow_custom_value=True)
        speaker = gr.Dropdown(list(first.speakers) if first else [],
                              value=first.speakers[0] if first and first.speakers else None,
                              label="Speaker", elem_id="live-speaker", allow_custom_value=True)
        transpose = gr.Slider(-24, 24, value=0, step=1, label="Transpose (semitones)",
                              elem_id="live-transpose")
    with gr.Row():
        f0_method = gr.Dropdown(list(PITCH_METHODS), value="fcpe", label="F0 method",
                                elem_id="live-f0")
        block_ms = gr.Number(value=100, label="Block (ms)", minimum=20, maximum=1000,
                             elem_id="live-block")
        low_latency = gr.Checkbox(value=False, label="Low latency (<= 100 ms, 50 ms blocks)",
                                  elem_id="live-low-latency")
        gate = gr.Checkbox(value=True, label="Silence gate", elem_id="live-gate")
    with gr.Row():
        start = gr.Button("Start", variant="primary", elem_id="live-start")
        stop = gr.Button("Stop", elem_id="live-stop")
    status = gr.HTML("<div id='live-status'>stopped</div>", elem_id="live-status-box")
    model.change(speakers_of, inputs=model, outputs=speaker)
    inputs = [model, speaker, transpose, f0_method, block_ms, low_latency, gate]
    start.click(None, inputs=inputs, outputs=None, js=START_JS)
    stop.click(None, inputs=None, outputs=None, js=STOP_JS)
    return {"model": model, "speaker": speaker, "start": start, "stop": stop, "status": status}
