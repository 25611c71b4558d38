// Publish-with-confirms and consume throughput of persistent messages into a
// quorum queue, for ops/bench/amqp. Prints one JSON line of figures.
import AMQP
import Foundation

let args = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    return fallback
}
let url = option("--amqp", ProcessInfo.processInfo.environment["BIS_AMQP_URL"] ?? "amqp://bis:bis@127.0.0.1:5682/%2F")
let count = Int(option("--messages", "50000"))!
let size = Int(option("--size", "1024"))!
let window = Int(option("--window", "1000"))!
let prefetch = Int(option("--prefetch", "1000"))!
let queue = "bench.amqp.swift"

func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

var config = try AMQPConfiguration(url: url)
config.confirmWindow = window
let amqp = try await AMQPConnection.connect(config)
try? await amqp.deleteQueue(queue)
try await amqp.declare(.queue(QueueSpec(queue)))
let body = [UInt8](repeating: UInt8(ascii: "x"), count: size)

// Keep `window` publishes in flight from a fixed set of tasks: each task
// publishes its share one confirm at a time, so the window stays full.
let publishStart = seconds()
try await withThrowingTaskGroup(of: Void.self) { group in
    let tasks = window
    for t in 0..<tasks {
        group.addTask {
            var i = t
            while i < count {
                try await amqp.publish(OutgoingMessage(body: body), exchange: "", routingKey: queue)
                i += tasks
            }
        }
    }
    try await group.waitForAll()
}
let publishSeconds = seconds() - publishStart

let consumeStart = seconds()
let consumer = try await amqp.consume(queue: queue, prefetch: prefetch)
var received = 0
for try await d in consumer {
    try await d.ack()
    received += 1
    if received == count { break }
}
let consumeSeconds = seconds() - consumeStart
consumer.cancel()
try await amqp.deleteQueue(queue)
await amqp.close()
print("""
{"client":"bis-swift","messages":\(count),"size":\(size),"publish_per_s":\(Int(Double(count) / publishSeconds)),\
"consume_per_s":\(Int(Double(count) / consumeSeconds))}
""")
