/// Colours for segments: the Okabe-Ito palette (distinguishable with the common colour-vision
/// deficiencies), darkened where a hue is too light on white, in a fixed order so a segment has
/// the same colour in every chart of its group.
enum Palette {
    static let segments = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C7A00", "#3B3B3B"]
    static let noSegment = "#9AA0A6"
    static let entries = "#0072B2"
    static let exits = "#D55E00"
    static let floor = "#B00020"

    static func segment(_ index: Int?) -> String {
        guard let index else { return noSegment }
        return segments[index % segments.count]
    }
}
