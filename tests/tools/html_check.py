"""html_check.py: open HTML pages in headless Chromium over the DevTools
protocol (--remote-debugging-pipe: NUL-terminated JSON on fds 3 and 4, so only
the standard library is needed) and print one JSON line per page:
{"page", "errors": [console errors, exceptions, failed loads], "figs": [ids of
svg.fig], "images": n, "bad_images": [sources that do not decode], "links":
[hrefs], "screenshot": path or null}.

usage: html_check.py CHROMIUM SHOTDIR PAGE.html...
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

ERR = subprocess.DEVNULL if os.environ.get("FD_CHROMIUM_LOG") is None else None

JS = r"""(async () => {
  const imgs = [...document.querySelectorAll('img, image')];
  const bad = [];
  for (const el of imgs) {
    const src = el.getAttribute('src') || el.getAttribute('href') ||
      el.getAttributeNS('http://www.w3.org/1999/xlink', 'href') || '';
    const ok = await new Promise(r => { const i = new Image();
      i.onload = () => r(i.naturalWidth > 0 && i.naturalHeight > 0);
      i.onerror = () => r(false); i.src = src; });
    if (!ok) bad.push(src.slice(0, 80));
  }
  return JSON.stringify({
    figs: [...document.querySelectorAll('svg.fig')].map(s => s.id),
    images: imgs.length, bad_images: bad,
    links: [...document.querySelectorAll('a')].map(a => a.getAttribute('href'))});
})()"""


class Cdp:
    def __init__(self, chromium, profile):
        r_cmd, w_cmd = os.pipe()  # we write commands; chromium reads fd 3
        r_res, w_res = os.pipe()  # chromium writes fd 4; we read
        def child():
            os.dup2(r_cmd, 3)
            os.dup2(w_res, 4)
        self.p = subprocess.Popen(
            [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--remote-debugging-pipe',
             '--no-first-run', '--user-data-dir=' + profile, 'about:blank'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ERR,
            preexec_fn=child, pass_fds=(3, 4))
        os.close(r_cmd)
        os.close(w_res)
        self.w = os.fdopen(w_cmd, 'wb', buffering=0)
        self.r = os.fdopen(r_res, 'rb', buffering=0)
        self.buf = b''
        self.next = 0
        self.events = []

    def _read(self):
        while b'\0' not in self.buf:
            chunk = self.r.read(65536)
            if not chunk:
                raise RuntimeError('chromium closed the DevTools pipe')
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next += 1
        m = {'id': self.next, 'method': method, 'params': params or {}}
        if session:
            m['sessionId'] = session
        self.w.write(json.dumps(m).encode() + b'\0')
        while True:
            msg = self._read()
            if msg.get('id') == self.next:
                if 'error' in msg:
                    raise RuntimeError('%s: %s' % (method, msg['error']))
                return msg['result']
            self.events.append(msg)

    def wait_event(self, method):
        for i, ev in enumerate(self.events):
            if ev.get('method') == method:
                del self.events[i]
                return ev
        while True:
            msg = self._read()
            if msg.get('method') == method:
                return msg
            self.events.append(msg)

    def close(self):
        try:
            self.call('Browser.close')
        except Exception:
            pass
        self.p.wait(timeout=30)


def errors_of(events):
    out = []
    for ev in events:
        m, p = ev.get('method'), ev.get('params', {})
        if m == 'Runtime.exceptionThrown':
            out.append('exception: ' + p['exceptionDetails'].get('text', ''))
        elif m == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert', 'warning'):
            out.append('console.%s: %s' % (p['type'], ' '.join(str(a.get('value', a.get('description')))
                                                          for a in p.get('args', []))))
        elif m == 'Log.entryAdded' and p['entry'].get('level') in ('error', 'warning'):
            out.append('log: ' + p['entry'].get('text', ''))
        elif m == 'Network.loadingFailed':
            out.append('load failed: ' + p.get('errorText', ''))
    return out


def main():
    chromium, shotdir, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
    with tempfile.TemporaryDirectory() as prof:
        c = Cdp(chromium, prof)
        try:
            for page in pages:
                t = c.call('Target.createTarget', {'url': 'about:blank'})['targetId']
                s = c.call('Target.attachToTarget', {'targetId': t, 'flatten': True})['sessionId']
                for dom in ('Page', 'Runtime', 'Log', 'Network'):
                    c.call(dom + '.enable', session=s)
                c.call('Emulation.setDeviceMetricsOverride',
                       {'width': 1400, 'height': 1500, 'deviceScaleFactor': 1, 'mobile': False}, session=s)
                c.events = []
                c.call('Page.navigate', {'url': 'file://' + os.path.abspath(page)}, session=s)
                c.wait_event('Page.loadEventFired')
                res = c.call('Runtime.evaluate', {'expression': JS, 'awaitPromise': True,
                                                  'returnByValue': True}, session=s)
                if 'exceptionDetails' in res:
                    info = {'figs': [], 'images': 0, 'bad_images': [], 'links': [],
                            'errors': ['check script: ' + str(res['exceptionDetails'].get('text'))]}
                else:
                    info = json.loads(res['result']['value'])
                    info['errors'] = []
                info['errors'] += errors_of(c.events)
                shot = os.path.join(shotdir, os.path.splitext(os.path.basename(page))[0] + '.png')
                png = c.call('Page.captureScreenshot', {'format': 'png'}, session=s)['data']
                with open(shot, 'wb') as f:
                    f.write(base64.b64decode(png))
                info['page'] = page
                info['screenshot'] = shot
                print(json.dumps(info), flush=True)
                c.call('Target.closeTarget', {'targetId': t})
        finally:
            c.close()


if __name__ == '__main__':
    main()
