import SegmentdEngine

/// Engagement per segment: events counted under the segment each contact was in just before
/// the event (an open that makes a cold contact warm counts for cold: it happened there).
extension ReportBuilder {
    /// Counts one input event. Call after every transition has been added.
    public func addEvent(contactId: String, type: String, at: Millis) {
        guard let measures = options.engagement else { return }
        engagementRead += 1
        let wanted = measures.indices.filter { measures[$0].eventTypes.contains(type) }
        if wanted.isEmpty { return }
        let since = options.since ?? firstAt, until = options.until ?? lastAt
        guard at >= since, at <= until else { return }
        if engagementCounts.count < groups.count {
            engagementCounts += Array(repeating: [:], count: groups.count - engagementCounts.count)
        }
        guard let c = contactIndex[contactId] else {
            engagementWithoutSegments += 1
            return
        }
        var counted = false
        for (g, state) in contacts[c].groups.enumerated() {
            // The last transition strictly before the event.
            var low = 0, high = state.history.count
            while low < high {
                let mid = (low + high) / 2
                if state.history[mid].at < at { low = mid + 1 } else { high = mid }
            }
            guard low > 0 else { continue }
            let segment = state.history[low - 1].segment
            var counts = engagementCounts[g][segment] ?? Array(repeating: 0, count: measures.count)
            for m in wanted { counts[m] += 1 }
            engagementCounts[g][segment] = counts
            counted = true
        }
        if counted { engagementCounted += 1 } else { engagementWithoutSegments += 1 }
    }

    /// Counts an event record that could not be used (bad or ignored).
    public func addUnusableEvent() {
        engagementRead += 1
        engagementNotUsable += 1
    }

    func engagement(_ measures: [EngagementMeasure], _ figures: [GroupFigures], _ reported: [Int]) -> Engagement {
        let groupsOut = zip(reported, figures).map { g, f -> GroupEngagement in
            let counts = g < engagementCounts.count ? engagementCounts[g] : [:]
            let tally = groups[g]
            func row(_ name: String?, index: Int, daily: [Int]) -> SegmentEngagement {
                let contactWeeks = Double(daily.reduce(0, +)) / 7
                let n = counts[index] ?? Array(repeating: 0, count: measures.count)
                return SegmentEngagement(
                    segment: name, contactWeeks: (contactWeeks * 100).rounded() / 100, counts: n,
                    perContactPerWeek: n.map { contactWeeks > 0 ? (Double($0) / contactWeeks * 1000).rounded() / 1000 : 0 })
            }
            var rows = f.segments.map { s in row(s.name, index: tally.segmentIndex[s.name] ?? Self.none, daily: s.dailySize) }
            rows.append(row(nil, index: Self.none, daily: f.noSegment.dailySize))
            return GroupEngagement(group: f.name, segments: rows)
        }
        return Engagement(
            measures: measures, eventsRead: engagementRead, eventsNotUsable: engagementNotUsable,
            eventsCounted: engagementCounted, eventsOfContactsWithoutSegments: engagementWithoutSegments, groups: groupsOut)
    }
}
