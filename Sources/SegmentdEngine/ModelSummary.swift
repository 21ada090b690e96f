/// A readable account of a compiled model: what `segmentd validate` prints.
public enum ModelSummary {
    public static func describe(_ m: Model) -> String {
        let layout = StateLayout(model: m)
        var out = "model \(m.version): valid\n"
        out += "groups:\n"
        for g in m.groups {
            out += "  \(g.name) (\(g.isFlag ? "flag" : "exclusive, first match wins")\(g.unless != nil ? ", with an 'unless'" : "")): "
            out += g.segments.map(\.name).joined(separator: ", ") + "\n"
        }
        for t in m.declaredTypes {
            let props = t.props.map { "\($0.name): \($0.kind.rawValue)" }.joined(separator: ", ")
            out += "declared event type '\(t.name)'\(props.isEmpty ? "" : " (\(props))")\n"
        }
        out += "filters: \(m.filters.count) (\(m.filterNames.compactMap { $0 }.joined(separator: ", ")) and \(m.filterNames.filter { $0 == nil }.count) inline)\n"
        out += "per-contact state: \(layout.stride) slots of 8 bytes\n"
        for l in m.lists {
            let name = m.filterNames[l.filter] ?? FilterSignature.of(m, l.filter)
            out += "  '\(name)': the \(l.capacity) most recent times, windows \(l.windows.map { DurationSpec(millis: $0).text }.joined(separator: ", "))\n"
        }
        for d in m.dayLists {
            let name = m.filterNames[d.filter] ?? FilterSignature.of(m, d.filter)
            out += "  days with '\(name)': the \(d.capacity) most recent distinct days (\(m.calendar.identifier)), windows \(d.windows.map { "\($0)d" }.joined(separator: ", "))\n"
        }
        for s in m.sums {
            let name = m.filterNames[s.filter] ?? FilterSignature.of(m, s.filter)
            out += "  sum of '\(m.propKeys[s.propKey])' over '\(name)': the \(s.capacity) most recent (time, value) pairs, windows \(s.windows.map { DurationSpec(millis: $0).text }.joined(separator: ", "))\n"
        }
        for s in m.scores {
            for p in s.parts where !p.eventTerms.isEmpty {
                out += "  score \(s.name).\(p.name): up to \(p.eventCapacity) recent scored events in \(DurationSpec(millis: p.window))\n"
            }
        }
        out += "  \(m.latest.count) latest-of tracker(s), \(m.attributes.count) attribute(s): \(m.attributes.map(\.name).joined(separator: ", "))\n"
        out += "segment track mappings: \(m.trackMappings.count)\n"
        out += "longest look-back: \(DurationSpec(millis: m.horizon))"
        return out
    }
}
