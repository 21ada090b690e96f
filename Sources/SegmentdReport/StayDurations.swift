/// Stays in one segment and their duration quantiles, with right-censoring.
///
/// A stay that ended contributes its duration; a stay still open at the end of the period is
/// censored there: the contact has been inside at least that long. Quantiles come from the
/// Kaplan-Meier estimate of the survival curve S(t) (the share of stays lasting longer than
/// t), so open stays pull the estimate up instead of being dropped (which would favour short
/// stays) or counted as ended (which would cut long ones short). The q-quantile is the
/// shortest ended duration t with S(t) <= 1 - q; when S never gets that low, the quantile is
/// not reached and is reported as "at least" the longest stay observed.
public struct StayDurations: Sendable {
    private(set) var ended: [Int64] = []
    private(set) var open: [Int64] = []

    public init() {}

    public mutating func addEnded(_ duration: Int64) { ended.append(duration) }
    public mutating func addOpen(_ duration: Int64) { open.append(duration) }

    public var count: Int { ended.count + open.count }

    /// The q-quantile (0 < q < 1) of the duration, or nil with no stays.
    public func quantile(_ q: Double) -> DurationEstimate? {
        if count == 0 { return nil }
        let endedSorted = ended.sorted()
        let openSorted = open.sorted()
        var atRisk = count
        var survival = 1.0
        var e = 0, o = 0
        // Walk the distinct times; at a tie, endings come before censorings (the usual
        // convention: a stay censored at t was still inside at t).
        while e < endedSorted.count {
            let t = endedSorted[e]
            while o < openSorted.count && openSorted[o] < t {
                atRisk -= 1
                o += 1
            }
            var endings = 0
            while e < endedSorted.count && endedSorted[e] == t {
                endings += 1
                e += 1
            }
            survival *= 1 - Double(endings) / Double(atRisk)
            atRisk -= endings
            // A tolerance against rounding: 0.1 built from products of fractions.
            if survival <= 1 - q + 1e-12 { return DurationEstimate(ms: t, atLeast: false) }
        }
        let longest = max(endedSorted.last ?? 0, openSorted.last ?? 0)
        return DurationEstimate(ms: longest, atLeast: true)
    }

    public var figures: StayFigures {
        StayFigures(stays: count, ended: ended.count, stillInside: open.count, median: quantile(0.5), p90: quantile(0.9))
    }
}
