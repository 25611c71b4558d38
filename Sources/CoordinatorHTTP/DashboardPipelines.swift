import CoordinatorAPI
import FleetWire
import Foundation
import Hummingbird

/// What the dashboard's pages know of a signed-in browser: who, the CSRF
/// token its forms carry, and which buttons its role allows.
struct DashboardViewer: Sendable {
    let name: String
    let csrf: String
    let canOperate: Bool
    let canApprove: Bool
    /// `--allow-self-approval`: the run's submitter may approve it too.
    var selfApprovalAllowed = false
}

extension Dashboard {
    /// How many runs the pipelines page looks through for the squares.
    static let pipelineRunsScanned = 1000
    static let squaresPerPipeline = 30

    /// `GET /pipelines`: each registered pipeline with its schedule, next
    /// slot, paused state, buttons, and its last 30 runs as squares.
    static func pipelinesPage(from service: any CoordinatorService, viewer: DashboardViewer?, now: Date = Date()) async throws -> String {
        let registered: [PipelineView]
        do { registered = try await service.pipelines() } catch ServiceError.notFound { registered = [] }
        let runs = registered.isEmpty ? [] : try await service.runs(limit: pipelineRunsScanned)
        return pipelinesPage(registered, runs: runs, viewer: viewer, now: now)
    }

    static func pipelinesPage(_ pipelines: [PipelineView], runs: [RunView], viewer: DashboardViewer?, now: Date) -> String {
        var b = "<h1>Pipelines</h1><p class=\"muted\">\(pipelines.count) registered · \(pipelines.filter(\.paused).count) paused</p>"
        b += "<table><tr><th>pipeline</th><th>schedule</th><th>timezone</th><th>next slot</th><th>state</th>"
        b += "<th>last \(squaresPerPipeline) runs</th>\(viewer?.canOperate == true ? "<th></th>" : "")</tr>"
        let byPipeline = Dictionary(grouping: runs, by: \.pipeline)
        for p in pipelines {
            b += "<tr class=\"pipeline\" id=\"pipeline-\(esc(p.name))\"><td><b>\(esc(p.name))</b> <span class=\"muted\">v\(p.version)</span></td>"
            if let words = p.schedule {
                b += "<td>\(esc(words))<br><code class=\"muted\">\(esc(p.cron ?? ""))</code></td>"
            } else {
                b += "<td class=\"muted\">no schedule (runs when triggered)</td>"
            }
            b += "<td>\(esc(p.timezone ?? ""))</td>"
            b += "<td>\(p.nextSlot.map { "<code>\(esc($0))</code>" } ?? "<span class=\"muted\">–</span>")</td>"
            let state = p.paused ? "<span class=\"state paused stopped\">paused</span>" : "<span class=\"state active succeeded\">active</span>"
            b += "<td>\(state)\(p.queuedSlots > 0 ? " <span class=\"muted\">\(p.queuedSlots) queued</span>" : "")</td>"
            b += "<td>\(squares(byPipeline[p.name] ?? []))</td>"
            if let viewer, viewer.canOperate {
                let base = "/pipelines/" + Routes.pathSegment(p.name) + "/"
                b += "<td>" + form(base + "run", viewer, "Run now")
                b += p.paused ? form(base + "resume", viewer, "Resume") : form(base + "pause", viewer, "Pause")
                b += "</td>"
            }
            b += "</tr>"
        }
        if pipelines.isEmpty { b += "<tr><td colspan=\"6\" class=\"muted\">no pipeline is registered: bis pipeline add SPEC</td></tr>" }
        b += "</table>"
        return page(title: "Pipelines · BIS Fleet", body: b, refresh: true, viewer: viewer)
    }

    /// The runs as squares, oldest on the left: one per slot (a manual run's
    /// slot is when it was submitted), coloured by state, each a link to its page.
    static func squares(_ runs: [RunView]) -> String {
        let iso = ISO8601DateFormatter()
        let keyed = runs.map { r in (slot: r.slot ?? iso.string(from: r.submittedAt), run: r) }
            .sorted { ($0.slot, $0.run.submittedAt) < ($1.slot, $1.run.submittedAt) }
            .suffix(squaresPerPipeline)
        if keyed.isEmpty { return "<span class=\"muted\">no runs yet</span>" }
        var b = "<span class=\"slots\">"
        for (slot, r) in keyed {
            let title = "\(slot) · \(r.state.rawValue)\(r.trigger.map { " · " + $0 } ?? "")"
            b += "<a class=\"slot \(r.state.rawValue)\" href=\"/runs/\(esc(Routes.pathSegment(r.id)))\" title=\"\(esc(title))\"></a>"
        }
        return b + "</span>"
    }

    /// `GET /signin`: a token field (a principal's token, as `BIS_TOKEN`).
    static func signIn(signedInAs: String?, auth: Bool, problem: String? = nil) -> String {
        var b = "<h1>Sign in</h1>"
        if let problem { b += "<p class=\"err\">\(esc(problem))</p>" }
        if let signedInAs { b += "<p>Signed in as <b>\(esc(signedInAs))</b>.</p>" }
        b += auth ? "<p class=\"muted\">With your token (the one you give <code>bis</code> as BIS_TOKEN).</p>"
            : "<p class=\"muted\">This coordinator has no auth: anyone may act, as anonymous.</p>"
        b += "<form method=\"post\" action=\"/signin\"><label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\"\(auth ? " required" : "")></label> "
        b += "<button type=\"submit\">Sign in</button></form>"
        return page(title: "Sign in · BIS Fleet", body: b, refresh: false)
    }

    /// A refused or failed form: the status, why, and the way back.
    static func refusal(status: HTTPResponse.Status, message: String) -> String {
        let b = "<h1>\(status.code) \(esc(status.reasonPhrase))</h1><p class=\"err\">\(esc(message))</p>"
            + "<p><a href=\"/\">Runs</a> · <a href=\"/pipelines\">Pipelines</a> · <a href=\"/signin\">Sign in</a></p>"
        return page(title: "\(status.code) · BIS Fleet", body: b, refresh: false)
    }

    /// The dashboard's page for a path (`/`, `/runs/<id>`) as a signed-in viewer sees it.
    static func page(path: String, from service: any CoordinatorService, viewer: DashboardViewer?, now: Date = Date()) async throws -> String? {
        if path == "/" || path.isEmpty {
            return index(runs: try await service.runs(limit: 50), workers: try await service.workers(), now: now, viewer: viewer)
        }
        guard path.hasPrefix("/runs/") else { return nil }
        let id = String(path.dropFirst("/runs/".count))
        guard let view = try await service.run(id) else { return nil }
        let quarantined = (try? await service.quarantine(id, rule: nil, limit: 2000)) ?? []
        let inputs = try await service.runInputs(id)
        let executed = (try? await service.runWorkers(id)) ?? []
        return run(view, quarantine: quarantined, inputs: inputs, workers: try await service.workers(), now: now,
                   executed: executed, viewer: viewer)
    }
}

