using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Session;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Concurrent requests on one session lose nothing: versioned commits re-apply their change set on conflict (over each store).</summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class ConcurrencyTests(StoreKind store) : TempFolderTest
{
    // Hundreds of commits to one session queue behind each other (one at a time per session in a process); over
    // PostgreSQL on a loaded 2-core machine the last waits longer than the default IOTimeout (10 s) and answers 500.
    // These tests are about merging, not about that limit.
    private Task<SessionTestHost> StartHostAsync(
        Action<IServerSideSessionsBuilder>? services = null,
        Action<WebApplication>? endpoints = null) =>
        SessionTestHost.StartAsync(Folder.Path, o => o.IOTimeout = TimeSpan.FromMinutes(5), services, endpoints, store: store);

    [Test]
    public async Task ThousandConcurrentRequests_EachSettingItsOwnKey_AllKeysPresent()
    {
        await using var host = await StartHostAsync();
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=seed&value=0");
        var cookie = $"{host.CookieName}={first.SetCookieValue(host.CookieName)}";

        var responses = await Task.WhenAll(Enumerable.Range(0, 1000).Select(async i =>
        {
            using var response = await client.SendWithCookieAsync($"/set?key=k{i:D4}&value={i}", cookie);
            return (int)response.StatusCode;
        }));
        var keys = (await client.GetTextAsync("/keys", cookie)).Split(',');

        TestContext.Out.WriteLine($"1,000 concurrent writes to one session: {responses.Count(s => s == 200)} answered 200, {1001 - keys.Length} lost.");
        if (host.Logs.GetSnapshot().FirstOrDefault(r => r.Id.Name == "CommitFailed") is { } failure)
        {
            TestContext.Out.WriteLine($"first failed commit: {failure.Exception}");
        }

        Assert.Multiple(() =>
        {
            Assert.That(responses, Is.All.EqualTo(200));
            Assert.That(keys, Has.Length.EqualTo(1001));
            Assert.That(keys, Is.EquivalentTo(Enumerable.Range(0, 1000).Select(i => $"k{i:D4}").Append("seed")));
        });
    }

    [Test]
    public async Task ConcurrentSetRemoveClearMixes_FinalStateEqualsOneSerialOrderOfTheCommits()
    {
        FaultyStore faulty = null!;
        const int requests = 300;
        await using var host = await StartHostAsync(services: s => s.UseStore(sp => faulty = new FaultyStore(SessionTestHost.RealStore(sp))),
            endpoints: app => app.MapGet("/mix", (HttpContext c, int n) =>
            {
                foreach (var op in Operations(n))
                {
                    op.Apply(c.Session);
                }

                return "ok";
            }));
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=k0&value=start");
        var cookie = $"{host.CookieName}={first.SetCookieValue(host.CookieName)}";

        var statuses = await Task.WhenAll(Enumerable.Range(1, requests).Select(async n =>
        {
            using var response = await client.SendWithCookieAsync($"/mix?n={n}", cookie);
            return (int)response.StatusCode;
        }));

        // Replay the commits in version order: each must be exactly its request's change set applied to the state before it.
        var state = new Dictionary<string, string>(StringComparer.Ordinal) { ["k0"] = "start" };
        var commits = faulty.Committed.OrderBy(c => c.Version).ToList();
        var writers = new List<int>();
        foreach (var (version, data) in commits)
        {
            Assert.That(SessionSerializer.TryDeserialize(data, out var entries, out _, out _), Is.True);
            var committed = entries.ToDictionary(e => e.Key, e => System.Text.Encoding.UTF8.GetString(e.Value), StringComparer.Ordinal);
            var writer = int.Parse(committed["writer"], System.Globalization.CultureInfo.InvariantCulture);
            writers.Add(writer);
            foreach (var op in Operations(writer))
            {
                op.Apply(state);
            }

            Assert.That(committed, Is.EquivalentTo(state), $"commit of version {version} (request {writer}) is its change set applied to version {version - 1}");
        }

        var final = (await client.GetTextAsync("/keys", cookie)).Split(',', StringSplitOptions.RemoveEmptyEntries);
        Assert.Multiple(() =>
        {
            Assert.That(statuses, Is.All.EqualTo(200));
            Assert.That(writers, Is.Unique);
            Assert.That(writers, Has.Count.EqualTo(requests), "every request committed exactly once");
            Assert.That(final, Is.EquivalentTo(state.Keys));
        });
    }

    /// <summary>Request n's operations: a seeded mix of sets, removes and clears, always ending by setting "writer".</summary>
    private static List<Op> Operations(int n)
    {
        var random = new Random(n);
        var ops = new List<Op>();
        for (var i = random.Next(1, 4); i > 0; i--)
        {
            var roll = random.Next(100);
            var key = $"k{random.Next(8)}";
            ops.Add(roll switch
            {
                < 65 => new Op(OpKind.Set, key, $"v{n}"),
                < 92 => new Op(OpKind.Remove, key, null),
                _ => new Op(OpKind.Clear, null, null),
            });
        }

        ops.Add(new Op(OpKind.Set, "writer", n.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return ops;
    }

    private enum OpKind
    {
        Set,
        Remove,
        Clear,
    }

    private sealed record Op(OpKind Kind, string? Key, string? Value)
    {
        public void Apply(ISession session)
        {
            switch (Kind)
            {
                case OpKind.Set:
                    session.SetString(Key!, Value!);
                    break;
                case OpKind.Remove:
                    session.Remove(Key!);
                    break;
                default:
                    session.Clear();
                    break;
            }
        }

        public void Apply(Dictionary<string, string> state)
        {
            switch (Kind)
            {
                case OpKind.Set:
                    state[Key!] = Value!;
                    break;
                case OpKind.Remove:
                    state.Remove(Key!);
                    break;
                default:
                    state.Clear();
                    break;
            }
        }
    }
}
