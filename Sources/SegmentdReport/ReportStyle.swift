/// The page's inline style sheet: system fonts, no external resource.
enum ReportStyle {
    static let css = """
    :root { --ink: #1b1f24; --muted: #57606a; --line: #d8dee4; --soft: #f6f8fa; --alert: #b00020; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
    main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
    header.page { border-bottom: 1px solid var(--line); padding-bottom: 12px; margin-bottom: 20px; }
    h1 { font-size: 26px; margin: 0 0 4px; }
    h2 { font-size: 21px; margin: 36px 0 4px; padding-top: 12px; border-top: 3px solid var(--ink); }
    h2 small { font-size: 14px; font-weight: 400; color: var(--muted); margin-left: 8px; }
    h3 { font-size: 16px; margin: 26px 0 6px; }
    h4 { font-size: 15px; margin: 0 0 2px; display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
    p { margin: 4px 0 10px; }
    .muted, .note { color: var(--muted); }
    .note { font-size: 13px; max-width: 75ch; }
    nav.groups { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 14px; }
    a { color: #0b5cad; }
    .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 16px 0; }
    .tile { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
    .tile .figure { font-size: 24px; font-weight: 700; display: block; }
    .tile .what { font-size: 13px; color: var(--muted); }
    .tile.alert { border-color: #f1b3bc; background: #fdf2f4; }
    .tile.alert .figure { color: var(--alert); }
    .attention { border-left: 4px solid var(--alert); background: #fdf2f4; padding: 8px 14px; border-radius: 0 8px 8px 0; }
    .attention.ok { border-left-color: #009e73; background: #eef8f4; }
    .attention ul { margin: 6px 0; padding-left: 20px; }
    .badge { display: inline-block; font-size: 12px; font-weight: 600; border-radius: 10px; padding: 1px 8px; white-space: nowrap; }
    .badge.below-floor { background: #fde7ea; color: #8a1020; }
    .badge.nobody-entered { background: #fff1cc; color: #5c4000; }
    .badge.not-in-model { background: #e8eaed; color: #3c4043; }
    .swatch { width: 12px; height: 12px; border-radius: 3px; display: inline-block; flex: none; }
    .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 14px; }
    .card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px 8px; }
    .card.flagged { border-color: #f1b3bc; }
    .card .size { font-size: 13px; color: var(--muted); margin: 2px 0 4px; }
    .card .size strong { font-size: 22px; color: var(--ink); margin-right: 4px; }
    .card .caption { font-size: 12px; color: var(--muted); margin: 6px 0 0; }
    .key { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 2px; vertical-align: -1px; }
    .caption .key { margin-left: 10px; }
    .caption .key:first-child { margin-left: 0; }
    .nowrap { white-space: nowrap; }
    svg.chart { width: 100%; height: auto; display: block; overflow: visible; }
    .wide { overflow-x: auto; }
    .wide svg.chart { min-width: 620px; }
    .wide svg.sankey { min-width: 820px; }
    svg text { font-family: inherit; }
    svg .label { font-size: 13px; fill: var(--ink); }
    svg .value { font-size: 13px; font-weight: 600; fill: var(--ink); }
    svg .flag-text { fill: var(--alert); font-size: 12px; }
    svg .axis { font-size: 10.5px; fill: var(--muted); }
    svg .annotation { font-size: 10.5px; font-weight: 600; fill: var(--ink); }
    svg .grid { stroke: #eaeef2; stroke-width: 1; }
    svg .tick, svg .zero { stroke: #8c959f; stroke-width: 1; }
    svg .floor { stroke: var(--alert); stroke-width: 1.5; stroke-dasharray: 5 4; }
    svg .floor-label { font-size: 11px; fill: var(--alert); }
    svg .band { fill-opacity: 0.38; }
    svg .band:hover { fill-opacity: 0.65; }
    svg .band-label { font-size: 11px; fill: var(--ink); pointer-events: none; }
    svg .node-label { font-size: 13px; fill: var(--ink); }
    svg .node-label .count, svg .column-head { fill: var(--muted); }
    svg .column-head { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
    .table-scroll { overflow-x: auto; }
    table { border-collapse: collapse; font-size: 13px; margin: 8px 0; font-variant-numeric: tabular-nums; }
    caption { text-align: left; color: var(--muted); padding-bottom: 6px; }
    th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right; white-space: nowrap; }
    th { background: var(--soft); font-weight: 600; }
    th[scope=row], thead th:first-child { text-align: left; }
    td small { display: block; font-size: 11px; color: var(--muted); }
    td.dark { color: #fff; }
    td.dark small { color: #e6eef6; }
    td.total { font-weight: 600; background: var(--soft); }
    details { margin: 8px 0; }
    summary { cursor: pointer; color: #0b5cad; font-size: 14px; }
    p.empty { padding: 20px; background: var(--soft); border-radius: 8px; color: var(--muted); }
    .empty-report { padding: 32px; background: var(--soft); border: 1px dashed var(--line); border-radius: 8px; font-size: 17px; }
    dl.definitions dt { font-weight: 600; margin-top: 8px; }
    dl.definitions dd { margin: 2px 0 0 0; color: var(--muted); font-size: 14px; max-width: 90ch; }
    footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
    @media (max-width: 560px) { main { padding: 14px 10px; } h1 { font-size: 22px; } .cards { grid-template-columns: 1fr; } }
    @media print { .wide { overflow: visible; } details { display: block; } }
    """
}
