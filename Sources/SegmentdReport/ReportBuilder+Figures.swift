import SegmentdEngine

/// The figures over the period, from what `ReportBuilder` accumulated: sizes per day and at the
/// end, weekly entries and exits, flows, stays, flags, overlaps, model versions and causes.
extension ReportBuilder {
    /// The figures, over the period.
    public func finish() -> SegmentReport {
        let reported = reportedGroups()
        let since = options.since ?? (firstAt == .max ? nil : firstAt)
        let until = options.until ?? (lastAt == .min ? nil : lastAt)
        var report = SegmentReport(
            source: options.source, period: nil, input: input, segmentOrder: segmentOrder(), minSize: options.minSize,
            contacts: contacts.count, modelVersions: modelVersions(), causes: causeCounts(),
            groups: [], overlaps: [], flags: [], engagement: nil)
        guard let since, let until, since <= until else {
            report.groups = reported.map { emptyFigures(groups[$0]) }
            report.flags = flags(report.groups)
            return report
        }
        let firstDay = CalendarDays.day(of: since), lastDay = CalendarDays.day(of: until)
        let firstMonday = CalendarDays.monday(onOrBefore: firstDay)
        let weekCount = Int((lastDay - firstMonday) / 7) + 1
        report.period = Period(
            since: EventTime.format(since), until: EventTime.format(until),
            days: (firstDay...lastDay).map(CalendarDays.label(ofDay:)),
            weeks: (0..<weekCount).map { w in
                let monday = firstMonday + Int64(w) * 7
                let inside = min(monday + 6, lastDay) - max(monday, firstDay) + 1
                return Week(start: CalendarDays.label(ofDay: monday), daysInPeriod: Int(inside))
            })
        addOpenStays(since: since, until: until)
        report.groups = reported.map { figures(groups[$0], firstDay: firstDay, lastDay: lastDay, firstMonday: firstMonday, weeks: weekCount) }
        report.flags = flags(report.groups)
        report.overlaps = overlaps(reported)
        if let measures = options.engagement { report.engagement = engagement(measures, report.groups, reported) }
        return report
    }

    /// Whether the catalog applies: given, or assumed and matching a version seen.
    var catalogApplies: Bool {
        !options.catalogIsAssumed || options.catalog.modelVersion.map { versions[$0] != nil } ?? false
    }

    func segmentOrder() -> String {
        if options.catalog.groups.isEmpty { return options.catalog.origin }
        if catalogApplies { return options.catalog.origin }
        let seen = versions.keys.sorted().joined(separator: ", ")
        return "the transitions (their model version \(seen.isEmpty ? "is unknown" : seen) is not \(options.catalog.modelVersion ?? "the assumed model"))"
    }

    /// Group indexes to report: all, or without an assumed catalog's groups and segments the
    /// transitions never name.
    func reportedGroups() -> [Int] {
        if catalogApplies { return Array(groups.indices) }
        return groups.indices.filter { !groups[$0].mentioned.isEmpty }
    }

    func reportedSegments(_ t: GroupTally) -> [Int] {
        if catalogApplies { return Array(t.segments.indices) }
        return t.segments.indices.filter { t.mentioned.contains($0) }
    }

    func addOpenStays(since: Millis, until: Millis) {
        for contact in contacts {
            for (g, state) in contact.groups.enumerated() where state.current >= 0 {
                guard let entered = state.enteredAt, entered >= since else { continue }
                groups[g].stays[state.current, default: StayDurations()].addOpen(until - entered)
            }
        }
    }

    func emptyFigures(_ t: GroupTally) -> GroupFigures {
        GroupFigures(
            name: t.name, isFlag: t.isFlag, inModel: t.inModel, transitionsInPeriod: 0, contacts: 0,
            segments: reportedSegments(t).map { s in
                SegmentFigures(
                    name: t.segments[s], inModel: s < t.modelSegments, size: 0, sizeAtStart: 0, dailySize: [],
                    entries: 0, exits: 0, weeklyEntries: [], weeklyExits: [], belowMinSize: options.minSize > 0,
                    nobodyEntered: true, timeInSegment: StayDurations().figures)
            },
            noSegment: NoSegmentFigures(size: 0, dailySize: []), flows: [])
    }

    func figures(_ t: GroupTally, firstDay: Int64, lastDay: Int64, firstMonday: Int64, weeks: Int) -> GroupFigures {
        let days = Int(lastDay - firstDay) + 1
        func daily(_ s: Int) -> [Int] {
            var size = t.initial[s] ?? 0
            return (0..<days).map { d in
                size += t.deltas[DayKey(day: firstDay + Int64(d), segment: s)] ?? 0
                return size
            }
        }
        func weekly(_ counts: [DayKey: Int], _ s: Int) -> [Int] {
            var out = Array(repeating: 0, count: weeks)
            for (key, n) in counts where key.segment == s {
                out[Int((key.day - firstMonday) / 7)] += n
            }
            return out
        }
        let segments = reportedSegments(t).map { s -> SegmentFigures in
            let sizes = daily(s)
            let size = sizes.last ?? 0
            let entries = weekly(t.entries, s), exits = weekly(t.exits, s)
            let entered = entries.reduce(0, +)
            return SegmentFigures(
                name: t.segments[s], inModel: s < t.modelSegments, size: size, sizeAtStart: t.initial[s] ?? 0,
                dailySize: sizes, entries: entered, exits: exits.reduce(0, +), weeklyEntries: entries,
                weeklyExits: exits, belowMinSize: size < options.minSize, nobodyEntered: entered == 0,
                timeInSegment: (t.stays[s] ?? StayDurations()).figures)
        }
        let noSegment = daily(Self.none)
        let name = { (s: Int) in s == Self.none ? nil : t.segments[s] }
        let flows = t.flows.sorted { a, b in
            a.value != b.value ? a.value > b.value : (a.key.from, a.key.to) < (b.key.from, b.key.to)
        }.map { Flow(from: name($0.key.from), to: name($0.key.to), count: $0.value) }
        let inSegments = segments.reduce(0) { $0 + $1.size }
        return GroupFigures(
            name: t.name, isFlag: t.isFlag, inModel: t.inModel, transitionsInPeriod: t.transitionsInPeriod,
            contacts: inSegments + (noSegment.last ?? 0), segments: segments,
            noSegment: NoSegmentFigures(size: noSegment.last ?? 0, dailySize: noSegment), flows: flows)
    }

    func flags(_ figures: [GroupFigures]) -> [SegmentFlag] {
        figures.flatMap { g in
            g.segments.flatMap { s -> [SegmentFlag] in
                var out: [SegmentFlag] = []
                if s.nobodyEntered { out.append(SegmentFlag(group: g.name, segment: s.name, kind: .nobodyEntered, size: s.size)) }
                if s.belowMinSize { out.append(SegmentFlag(group: g.name, segment: s.name, kind: .belowMinSize, size: s.size)) }
                return out
            }
        }
    }

    func modelVersions() -> [ModelVersionUse] {
        versions.sorted { $0.value.first != $1.value.first ? $0.value.first < $1.value.first : $0.key < $1.key }.map {
            ModelVersionUse(version: $0.key, transitions: $0.value.count, firstAt: EventTime.format($0.value.first), lastAt: EventTime.format($0.value.last))
        }
    }

    func causeCounts() -> [CauseCount] {
        causes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { CauseCount(kind: $0.key, transitions: $0.value) }
    }

    func overlaps(_ reported: [Int]) -> [Overlap] {
        let pairs: [(Int, Int)]
        if let wanted = options.overlapPairs {
            pairs = wanted.compactMap { p in
                guard let r = groupIndex[p.rows], let c = groupIndex[p.columns], reported.contains(r), reported.contains(c) else { return nil }
                return (r, c)
            }
        } else if let first = reported.first {
            pairs = reported.dropFirst().filter { !groups[$0].isFlag && groups[$0].segments.count > 1 }.map { (first, $0) }
        } else {
            pairs = []
        }
        return pairs.map { overlap(rows: $0.0, columns: $0.1) }
    }

    func overlap(rows r: Int, columns c: Int) -> Overlap {
        let rowSegments = reportedSegments(groups[r]), columnSegments = reportedSegments(groups[c])
        // Position of each segment index in the matrix; "no segment" is the last row/column.
        var rowAt: [Int: Int] = [Self.none: rowSegments.count]
        for (i, s) in rowSegments.enumerated() { rowAt[s] = i }
        var columnAt: [Int: Int] = [Self.none: columnSegments.count]
        for (i, s) in columnSegments.enumerated() { columnAt[s] = i }
        var counts = Array(repeating: Array(repeating: 0, count: columnSegments.count + 1), count: rowSegments.count + 1)
        for contact in contacts {
            let inRow = contact.groups.count > r ? contact.groups[r].current : Self.unseen
            let inColumn = contact.groups.count > c ? contact.groups[c].current : Self.unseen
            if inRow == Self.unseen && inColumn == Self.unseen { continue }
            guard let i = rowAt[max(inRow, Self.none)], let j = columnAt[max(inColumn, Self.none)] else { continue }
            counts[i][j] += 1
        }
        return Overlap(
            rowGroup: groups[r].name, columnGroup: groups[c].name,
            rows: rowSegments.map { groups[r].segments[$0] } + [nil],
            columns: columnSegments.map { groups[c].segments[$0] } + [nil], counts: counts)
    }
}
