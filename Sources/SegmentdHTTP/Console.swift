import Foundation
import SegmentdDaemon
import SegmentdEngine
import SegmentdReport

/// The live console at `GET /`: one self-contained page (inline style, inline SVG, one inline
/// script; nothing fetched from elsewhere) with this instance's segment sizes now, transitions
/// per minute per group over the last hour, the latest transitions, and a contact search that
/// explains `/contacts/{id}` readably. The page arrives complete (drawn on the server by the
/// report's chart code); its script replaces the panel with `GET /console/panel` every 5 s and
/// renders contact explanations with DOM text nodes (no markup from data).
enum Console {
    /// What the page shows, gathered once per request.
    struct View {
        var model: Model
        var instance: String
        var inputTopic: String
        var assigned: [Int32]
        var inputPartitions: Int32
        /// [group][segment] over this instance's partitions.
        var sizes: [[Int]]
        /// Contacts held by this instance's engines; nil when the daemon could not say now.
        var contacts: Int?
        var recent: RecentTransitions.Snapshot
        var phase: String
        var now: Millis
    }

    static func gather(_ daemon: Daemon) async -> View {
        let contacts: Int? = switch await daemon.askEachThread(timeoutMs: 2_000, { engines in engines.reduce(0) { $0 + $1.engine.contactCount } }) {
        case .success(let counts): counts.reduce(0, +)
        case .failure: nil
        }
        let now = Daemon.wallMs()
        let model = daemon.model
        var sizes = daemon.segmentContacts
        // The sizes are refreshed once per loop iteration: after a reload they may still have
        // the old model's shape for a moment.
        if sizes.count != model.groups.count || zip(sizes, model.groups).contains(where: { $0.count != $1.segments.count }) {
            sizes = model.groups.map { Array(repeating: 0, count: $0.segments.count) }
        }
        return View(model: model, instance: daemon.config.transactionalId, inputTopic: daemon.config.inputTopic,
                    assigned: daemon.status.assigned.sorted(), inputPartitions: daemon.inputPartitions, sizes: sizes,
                    contacts: contacts, recent: daemon.recent.snapshot(nowMs: now), phase: daemon.phase.description, now: now)
    }

    static func scope(_ v: View) -> String {
        if v.assigned.isEmpty {
            return "This instance owns no partition of \(v.inputTopic) now (\(v.phase)): it has nothing to show yet."
        }
        let list = v.assigned.map(String.init).joined(separator: ", ")
        let of = v.inputPartitions > 0 ? " of \(v.inputPartitions)" : ""
        return "Sizes and transitions are this instance's only: partition\(v.assigned.count == 1 ? "" : "s") \(list)\(of) of \(v.inputTopic)."
            + (v.inputPartitions > 0 && v.assigned.count < Int(v.inputPartitions) ? " Other instances own the rest." : "")
    }

    static func page(_ v: View) -> String {
        var out = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        out += "<title>segmentd console · \(ConsoleCharts.escape(v.instance))</title>"
        out += "<style>\(ConsoleCharts.css)</style></head><body><main>"
        out += "<header class=\"page\"><h1>segmentd console</h1>"
        out += "<p class=\"period\"><span class=\"live\" id=\"live\" title=\"refreshed every 5 s\"></span>instance <strong>\(ConsoleCharts.escape(v.instance))</strong> · model <strong>\(ConsoleCharts.escape(v.model.version))</strong> · <span id=\"updated\">\(ConsoleCharts.escape(clockTime(v.now))) UTC</span></p>"
        out += "<nav class=\"groups\" aria-label=\"Sections\"><a href=\"#search\">Contact</a><a href=\"#groups\">Sizes and transitions per minute</a><a href=\"#latest\">Latest transitions</a></nav>"
        out += "</header>"
        out += "<section id=\"search\"><h2>Contact <small>why a contact is where it is</small></h2>"
        out += "<form class=\"search\" id=\"contact-form\"><input id=\"contact-id\" name=\"id\" placeholder=\"contact id\" autocomplete=\"off\" required aria-label=\"contact id\"><button type=\"submit\">Explain</button></form>"
        out += "<p class=\"note\">The contact's segment in every group, each condition with its figures (counts in windows, latest times, score terms) and the next instant time alone can change it, from <code>/contacts/{id}</code>. A contact on a partition another instance owns is answered by that instance.</p>"
        out += "<div id=\"contact\" aria-live=\"polite\"></div></section>"
        out += "<div id=\"panel\">\(panel(v))</div>"
        out += "<footer>segmentd's live console: this instance's state, refreshed every 5 s; the report (<code>segmentd report</code>) covers every partition over any period. All times UTC.</footer>"
        out += "<script type=\"application/json\" id=\"segments\">\(segmentColoursJSON(v.model))</script>"
        out += "<script>\(script)</script>"
        out += "</main></body></html>\n"
        return out
    }

    /// The part of the page that `/console/panel` refreshes.
    static func panel(_ v: View) -> String {
        var out = "<p class=\"scope\" id=\"scope\" data-partitions=\"\(v.assigned.map(String.init).joined(separator: ","))\">\(ConsoleCharts.escape(scope(v)))</p>"
        let lastHour = v.recent.minutes.reduce(0) { $0 + $1.counts.values.reduce(0, +) }
        out += "<div class=\"tiles\">"
        out += "<div class=\"tile\" id=\"tile-contacts\"><span class=\"figure\">\(v.contacts.map(ConsoleCharts.count) ?? "–")</span><span class=\"what\">contacts on this instance</span></div>"
        out += "<div class=\"tile\" id=\"tile-hour\"><span class=\"figure\">\(ConsoleCharts.count(lastHour))</span><span class=\"what\">transitions in the last hour</span></div>"
        out += "<div class=\"tile\" id=\"tile-total\"><span class=\"figure\">\(ConsoleCharts.count(v.recent.committedTotal))</span><span class=\"what\">transitions since this process started</span></div>"
        out += "</div>"
        out += "<section id=\"groups\"><h2>Groups <small>segment sizes now · transitions per minute over the last hour, by the minute they committed</small></h2><div class=\"stack\">"
        let starts = v.recent.minutes.map(\.start)
        for (g, group) in v.model.groups.enumerated() {
            let sizes = v.sizes[g]
            let inSome = sizes.reduce(0, +)
            let none = v.contacts.map { max(0, $0 - inSome) }
            let counts = v.recent.minutes.map { $0.counts[group.name] ?? 0 }
            out += "<div class=\"card group-live\" id=\"group-\(ConsoleCharts.escape(group.name))\" data-group=\"\(ConsoleCharts.escape(group.name))\" data-in-segment=\"\(inSome)\">"
            out += "<h4>\(ConsoleCharts.escape(group.name))</h4><div class=\"pair\">"
            out += "<div class=\"sizes\"><p class=\"size\"><strong>\(ConsoleCharts.count(inSome))</strong>in a segment now</p>"
            out += ConsoleCharts.sizeBars(group: group.name, segments: group.segments.enumerated().map { ($1.name, sizes[$0]) }, noSegment: none)
            out += "</div><div class=\"rate\"><p class=\"size\"><strong>\(ConsoleCharts.count(counts.reduce(0, +)))</strong>transitions in the last hour</p>"
            out += ConsoleCharts.perMinute(group: group.name, starts: starts, counts: counts) + "</div></div></div>"
        }
        out += "</div></section>"
        out += latest(v)
        return out
    }

    static func latest(_ v: View) -> String {
        let ids = v.recent.keepsContactIds
        var out = "<section id=\"latest\"><h2>Latest transitions <small>the newest \(v.recent.latest.count) committed by this instance</small></h2>"
        if !ids {
            out += "<p class=\"note\" id=\"ids-hidden\">Contact ids are not shown: the operator has not enabled them (<code>http_contact_ids: on</code>).</p>"
        }
        guard !v.recent.latest.isEmpty else {
            return out + "<p class=\"empty\">No transition committed since this process started.</p></section>"
        }
        out += "<div class=\"table-scroll tall\"><table id=\"latest-table\"><thead><tr><th class=\"left\">at</th>"
        if ids { out += "<th class=\"left\">contact</th>" }
        out += "<th class=\"left\">group</th><th class=\"left\">from</th><th class=\"left\">to</th><th class=\"left\">cause</th><th class=\"left\">committed</th></tr></thead><tbody>"
        let colours = colourIndex(v.model)
        for e in v.recent.latest {
            func segment(_ s: String?) -> String {
                guard let s else { return "<span class=\"muted\">(no segment)</span>" }
                let colour = ConsoleCharts.segmentColour(colours[e.group]?[s])
                return "<span class=\"key\" style=\"background:\(colour)\"></span>\(ConsoleCharts.escape(s))"
            }
            out += "<tr class=\"transition\" data-group=\"\(ConsoleCharts.escape(e.group))\" data-from=\"\(ConsoleCharts.escape(e.from ?? ""))\" data-to=\"\(ConsoleCharts.escape(e.to ?? ""))\">"
            out += "<td class=\"left\">\(ConsoleCharts.escape(EventTime.format(e.at)))</td>"
            if ids, let c = e.contactId {
                out += "<td class=\"left\"><a href=\"#contact=\(ConsoleCharts.escape(percentEncoded(c)))\">\(ConsoleCharts.escape(c))</a></td>"
            }
            out += "<td class=\"left\">\(ConsoleCharts.escape(e.group))</td><td class=\"left\">\(segment(e.from))</td><td class=\"left\">\(segment(e.to))</td>"
            out += "<td class=\"left\">\(ConsoleCharts.escape(e.cause))</td><td class=\"left\">\(ConsoleCharts.escape(clockTime(e.committedAt)))</td></tr>"
        }
        out += "</tbody></table></div></section>"
        return out
    }

    static func colourIndex(_ model: Model) -> [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for g in model.groups {
            var m: [String: Int] = [:]
            for (i, s) in g.segments.enumerated() { m[s.name] = i }
            out[g.name] = m
        }
        return out
    }

    /// `{"group": {"segment": "#colour"}}` for the script (segment badges), safe inside
    /// `<script>`: `<` is escaped.
    static func segmentColoursJSON(_ model: Model) -> String {
        var doc: [String: [String: String]] = [:]
        for g in model.groups {
            var m: [String: String] = [:]
            for (i, s) in g.segments.enumerated() { m[s.name] = ConsoleCharts.segmentColour(i) }
            doc[g.name] = m
        }
        let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "<", with: "\\u003c")
    }

    static func percentEncoded(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    /// `HH:MM:SS` of a wall-clock instant.
    static func clockTime(_ ms: Millis) -> String {
        let t = EventTime.format(ms)
        let c = Array(t)
        return c.count >= 19 ? String(c[11..<19]) : t
    }

    /// Refreshes the panel every 5 s; explains a contact (form, `#contact=ID` links and URLs).
    static let script = """
    (function () {
      'use strict';
      var panel = document.getElementById('panel');
      var live = document.getElementById('live');
      var updated = document.getElementById('updated');
      var colours = JSON.parse(document.getElementById('segments').textContent);
      var out = document.getElementById('contact');
      var input = document.getElementById('contact-id');

      function refresh() {
        fetch('console/panel', { cache: 'no-store' }).then(function (r) {
          if (!r.ok) { throw new Error('HTTP ' + r.status); }
          return r.text();
        }).then(function (html) {
          panel.innerHTML = html;
          live.classList.remove('stale');
          live.title = 'refreshed every 5 s';
          updated.textContent = new Date().toISOString().slice(11, 19) + ' UTC';
        }).catch(function (e) {
          live.classList.add('stale');
          live.title = 'not refreshed: ' + e.message;
        });
      }
      setInterval(refresh, 5000);

      function el(tag, cls, text) {
        var e = document.createElement(tag);
        if (cls) { e.className = cls; }
        if (text !== undefined && text !== null) { e.textContent = String(text); }
        return e;
      }
      function when(iso) { return iso ? iso.slice(0, 10) + ' ' + iso.slice(11, 19) + ' UTC' : 'never'; }
      function span(fromIso, toIso) {
        var ms = Date.parse(toIso) - Date.parse(fromIso);
        if (!isFinite(ms)) { return ''; }
        var s = ms / 1000;
        if (s < 60) { return Math.round(s) + ' s'; }
        if (s < 3600) { return Math.round(s / 60) + ' min'; }
        if (s < 86400) { return (s / 3600).toFixed(1) + ' h'; }
        return (s / 86400).toFixed(1) + ' d';
      }
      function reasonItem(text) {
        var li = el('li');
        var rest = text;
        if (rest.indexOf('\\u2713 ') === 0) { li.className = 'met'; rest = rest.slice(2); }
        else if (rest.indexOf('\\u2717 ') === 0) { li.className = 'unmet'; rest = rest.slice(2); }
        else { li.className = 'note'; }
        var colon = rest.indexOf(': ');
        if (colon > 0) {
          li.appendChild(el('span', 'cond', rest.slice(0, colon)));
          li.appendChild(document.createTextNode(': ' + rest.slice(colon + 2)));
        } else {
          li.appendChild(document.createTextNode(rest));
        }
        return li;
      }
      function show(doc, status) {
        out.textContent = '';
        var box = el('div', 'explanation');
        box.id = 'explanation';
        if (status === 200) {
          box.setAttribute('data-contact', doc.contact_id);
          box.appendChild(el('h3', null, 'Contact ' + doc.contact_id));
          var facts = el('p', 'muted');
          facts.textContent = 'partition ' + doc.partition + ' · instance ' + doc.instance + ' · model ' + doc.model_version +
            ' · clock ' + when(doc.clock) + ' · first seen ' + when(doc.first_seen);
          box.appendChild(facts);
          var next = el('p', 'next-change');
          next.id = 'next-change';
          if (doc.next_change) {
            next.appendChild(el('strong', null, 'Next change: '));
            next.appendChild(document.createTextNode(when(doc.next_change) + ' (' + span(doc.clock, doc.next_change) +
              ' after its clock): time alone can change a membership then, unless an event comes first.'));
          } else {
            next.appendChild(el('strong', null, 'Next change: '));
            next.appendChild(document.createTextNode('none by time alone; only an event can move this contact.'));
          }
          box.appendChild(next);
          var grid = el('div', 'groups');
          (doc.groups || []).forEach(function (g) {
            var card = el('div', 'card');
            card.setAttribute('data-group', g.group);
            card.setAttribute('data-segment', g.segment === null ? '' : g.segment);
            var head = el('h4', null, g.group + ' ');
            var badge = el('span', 'segment-badge', g.segment === null ? '(no segment)' : g.segment);
            badge.style.background = g.segment === null ? '#9AA0A6' : ((colours[g.group] || {})[g.segment] || '#3B3B3B');
            head.appendChild(badge);
            card.appendChild(head);
            var list = el('ul');
            (g.reason || []).forEach(function (r) { list.appendChild(reasonItem(r)); });
            card.appendChild(list);
            grid.appendChild(card);
          });
          box.appendChild(grid);
        } else if (status === 404) {
          box.appendChild(el('p', 'error', 'No state for contact ' + doc.contact_id + ' on partition ' + doc.partition +
            ' (instance ' + doc.instance + ' owns it): no event of this contact has been applied.'));
        } else {
          box.appendChild(el('p', 'error', doc.error || ('HTTP ' + status)));
        }
        out.appendChild(box);
      }
      function explain(id) {
        if (!id) { return; }
        input.value = id;
        out.textContent = 'Looking up ' + id + '…';
        fetch('contacts/' + encodeURIComponent(id), { cache: 'no-store' }).then(function (r) {
          var type = r.headers.get('content-type') || '';
          if (type.indexOf('application/json') === 0) {
            return r.json().then(function (doc) { show(doc, r.status); });
          }
          return r.text().then(function (t) { show({ error: t.trim() || ('HTTP ' + r.status) }, r.status); });
        }).catch(function (e) { show({ error: 'the daemon did not answer: ' + e.message }, 0); });
      }
      function fromHash() {
        var h = location.hash;
        if (h.indexOf('#contact=') === 0) { explain(decodeURIComponent(h.slice(9))); }
      }
      document.getElementById('contact-form').addEventListener('submit', function (ev) {
        ev.preventDefault();
        var id = input.value.trim();
        if (!id) { return; }
        var hash = '#contact=' + encodeURIComponent(id);
        if (location.hash === hash) { explain(id); } else { location.hash = hash; }
      });
      window.addEventListener('hashchange', fromHash);
      fromHash();
    })();
    """
}
