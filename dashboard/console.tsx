/**
 * The serial console in the browser: xterm.js over a WebSocket to
 * /api/v1/vms/:ns/:name/console (the server shares one QEMU connection among all viewers).
 * Keystrokes go as binary frames; a resize refits the terminal to its box and is told to the
 * server as a text frame (a serial line has no window size to set). Loaded on demand: the
 * overview does not pay for xterm.
 */
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';

export interface ConsoleHandle {
  dispose(): void;
}

export function openConsole(el: HTMLElement, ns: string, name: string, onState: (s: string) => void): ConsoleHandle {
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000, screenReaderMode: false, theme: { background: '#0d1117', foreground: '#e6edf3' } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/vms/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/console`);
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  onState('connecting');
  ws.onopen = () => {
    onState('connected');
    ws.send(JSON.stringify({ resize: [term.cols, term.rows] }));
    term.focus();
  };
  ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
  ws.onclose = (e) => onState(`closed${e.reason ? `: ${e.reason}` : ''}`);
  const input = term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(enc.encode(d)));
  const resized = term.onResize(({ cols, rows }) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ resize: [cols, rows] })));
  const observer = new ResizeObserver(() => fit.fit());
  observer.observe(el);
  // For tests and the curious: the terminal's size.
  el.dataset['cols'] = String(term.cols);
  term.onResize(({ cols, rows }) => {
    el.dataset['cols'] = String(cols);
    el.dataset['rows'] = String(rows);
  });
  el.dataset['rows'] = String(term.rows);
  // The whole buffer as text (scrollback included), for the browser tests and copy-paste.
  (window as unknown as { virtopsConsoleText?: () => string }).virtopsConsoleText = () => {
    const b = term.buffer.active;
    let text = '';
    for (let i = 0; i < b.length; i++) {
      const line = b.getLine(i);
      // A wrapped line continues the previous one.
      text += (i > 0 && !line?.isWrapped ? '\n' : '') + (line?.translateToString(true) ?? '');
    }
    return text;
  };
  return {
    dispose() {
      observer.disconnect();
      input.dispose();
      resized.dispose();
      ws.close();
      term.dispose();
    },
  };
}
