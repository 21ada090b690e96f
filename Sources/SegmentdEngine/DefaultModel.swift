/// The default model shipped with segmentd, embedded so the binary needs no file to run.
/// `config/default-model.yaml` is the same text (a test keeps the two equal).
enum DefaultModel {
    static let yaml = """
# segmentd default model (docs/default-model.md): the five-segment B2B lifecycle, the
# fit + behavior lead score, hot/warm/cold/dead engagement tiers and the hot_lead flag, with the
# default Segment Spec mapping (docs/input.md). Every name, window and threshold is configuration:
# copy this file, change it, and pass it with --model. `segmentd validate FILE` checks a copy.
version: default-1

# Event filters: which events a condition counts. A filter is a name defined above it, or a
# mapping whose keys must all hold: type (one or a list), prop + one of equals / starts_with /
# contains / in (null in a list matches an absent or null property), any, all, not.
filters:
  machine_open: {type: email_open, prop: machine_open, equals: true}
  email_engagement:
    any:
      - {type: email_open, not: machine_open}
      - {type: [email_click, email_reply]}
  engagement:
    any:
      - email_engagement
      - {type: [page_view, resource_download, form_submit, meeting_booked]}
  pricing_visit: {type: page_view, prop: path, starts_with: /pricing}
  high_intent:
    any:
      - pricing_visit
      - {type: resource_download}
      - {type: email_click, prop: url, contains: case-stud}
      - {type: meeting_booked}
      - {type: form_submit, prop: form, equals: demo}
  subscribed: {type: subscribed}
  unsubscribed: {type: unsubscribed}
  spam_complaint: {type: spam_complaint}
  hard_bounce: {type: bounced, prop: kind, in: [hard, null]}

# Attributes: the latest value by event time (ties: the event applied last). A value that is
# absent, null or of the wrong kind leaves the earlier value unchanged.
attributes:
  stage: {from: crm_stage, prop: stage, kind: string}
  industry: {from: traits, prop: industry, kind: string, case_insensitive: true}
  company_size: {from: traits, prop: company_size, kind: integer}
  country: {from: traits, prop: country, kind: string, case_insensitive: true}

# Named conditions, usable by name in groups and scores.
conditions:
  suppressed:
    latest_of: [subscribed, unsubscribed, spam_complaint, hard_bounce]
    is_not: subscribed

# Scores: the sum of parts, each capped. Static terms test attributes; per-event terms add
# points for each matching event inside the window.
scores:
  lead_score:
    parts:
      - name: fit
        cap: 50
        terms:
          - {points: 30, when: {attribute: industry, in: [software, saas, technology]}}
          - {points: 20, when: {attribute: company_size, between: [51, 1000]}}
          - {points: 10, when: {attribute: country, in: [US, CA, GB, DE, FR, NL, AU]}}
      - name: behavior
        cap: 50
        window: 30d
        per_event:
          - {points: 20, filter: pricing_visit}
          - {points: 15, filter: {type: resource_download}}
          - {points: 10, filter: {type: email_click}}
          - {points: 5, filter: {type: email_open, not: machine_open}}

# Groups, in output order. Segments of a group are exclusive: the first whose condition holds
# wins; none holding means no segment (null). `unless` puts the contact in no segment of the
# group while it holds. A flag is a group with one segment named like the group.
groups:
  - name: lifecycle
    segments:
      - {name: suppressed, when: suppressed}
      - {name: customer, when: {attribute: stage, equals: customer}}
      - {name: new_subscriber, when: {at_least: 1, of: subscribed, within: 30d}}
      - {name: active_evaluator, when: {at_least: 1, of: high_intent, within: 30d}}
      - {name: engaged_non_converter, when: {at_least: 3, of: email_engagement, within: 30d}}
      - name: inactive
        when:
          all:
            - {none_of: engagement, within: 60d}
            - {first_seen_at_least: 60d}
  - name: lead_score
    unless: suppressed
    segments:
      - {name: sales_ready, when: {score: lead_score, at_least: 80}}
      - {name: nurture, when: {score: lead_score, at_least: 50}}
      - {name: top_of_funnel, when: always}
  - name: engagement_tier
    segments:
      - {name: dead, when: suppressed}
      - name: hot
        when:
          all:
            - {at_least: 1, of: high_intent, within: 7d}
            - {at_least: 1, of: email_engagement, within: 7d}
      - {name: warm, when: {at_least: 1, of: engagement, within: 30d}}
      - {name: cold, when: always}
  - name: hot_lead
    flag: {at_least: 2, of: pricing_visit, within: 7d}

# Segment Spec track events -> canonical types, with property renames (target: source, or a
# list of sources where the first present one wins). Page and identify calls are mapped as
# docs/input.md says. A track event not listed here is counted as ignored.
segment:
  track:
    Signed Up: {type: subscribed}
    Subscribed: {type: subscribed}
    Email Opened: {type: email_open, props: {machine_open: machine_open}}
    Email Link Clicked: {type: email_click, props: {url: link_url}}
    Email Replied: {type: email_reply}
    Email Bounced: {type: bounced, props: {kind: bounce_type}}
    Unsubscribed: {type: unsubscribed}
    Email Marked as Spam: {type: spam_complaint}
    Form Submitted: {type: form_submit, props: {form: [form_id, form]}}
    Resource Downloaded: {type: resource_download}
    Content Downloaded: {type: resource_download}
    Meeting Booked: {type: meeting_booked}
    Demo Requested: {type: meeting_booked}

"""

    static func defaultTrackMappings() throws(ModelError) -> [String: TrackMapping] {
        Model.defaultModel().trackMappings
    }
}
