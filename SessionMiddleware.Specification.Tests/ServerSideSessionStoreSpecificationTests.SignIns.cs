namespace SessionMiddleware.Specification.Tests;

/// <summary>
/// Sign-ins (schema 4): what a row records about its sign-in, the deletes by it (a provider's logout, a change of
/// credentials), and the cap on a user's sessions, atomic under simultaneous sign-ins from several stores.
/// </summary>
public abstract partial class ServerSideSessionStoreSpecificationTests
{
    private static readonly DateTimeOffset SignInTime = new(2026, 1, 1, 11, 59, 0, TimeSpan.Zero);

    private static NewSession SignedIn(byte[] key, string user, SessionSignIn? signIn = null, SessionUserLimit? limit = null) =>
        new(key, [1], user, null, null) { SignIn = signIn ?? new SessionSignIn(SignInTime), UserLimit = limit };

    /// <summary>The sign-in a row records comes back on load, after a create and after a renewal; a row without one loads none.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task SignIn_IsRecorded_ByCreateAndRenew_AndLoadsBack()
    {
        var store = await MigratedStoreAsync();
        var anonymous = NewKey();
        var created = NewKey();
        var renewed = NewKey();
        var signIn = new SessionSignIn(SignInTime, "https://idp.example", "sid-1", "sub-1", "stamp-hash");
        await store.CreateAsync(Row(anonymous));
        await store.CreateAsync(SignedIn(created, "alice", signIn));
        var later = signIn with { At = SignInTime.AddMinutes(1), Sid = "sid-2" };

        var renewal = await store.RenewAsync(anonymous, 1, SignedIn(renewed, "alice", later));

        Assert.Multiple(async () =>
        {
            Assert.That(renewal.Status, Is.EqualTo(SessionUpdateStatus.Committed));
            Assert.That((await store.LoadAsync(created))!.SignIn, Is.EqualTo(signIn));
            Assert.That((await store.LoadAsync(renewed))!.SignIn, Is.EqualTo(later));
            await store.CreateAsync(Row(anonymous));
            Assert.That((await store.LoadAsync(anonymous))!.SignIn, Is.Null);
        });
    }

    /// <summary>A data write keeps the recorded sign-in.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Update_KeepsTheRecordedSignIn()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        var signIn = new SessionSignIn(SignInTime, CredentialStamp: "s1");
        await store.CreateAsync(SignedIn(key, "alice", signIn));

        await store.UpdateAsync(key, [9], 1);

        Assert.That((await store.LoadAsync(key))!.SignIn, Is.EqualTo(signIn));
    }

    /// <summary>
    /// DeleteBySignIn by provider session: only rows of that sid at that issuer; by subject: every row of that sub at that
    /// issuer; by credential stamp: the user's rows that recorded another stamp (not those without one, not the excepted).
    /// </summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task DeleteBySignIn_MatchesOnlyTheFilteredSignIns()
    {
        var store = await MigratedStoreAsync();
        var idp = "https://idp.example";
        var (sidA, sidA2, sidB, otherIssuer) = (NewKey(), NewKey(), NewKey(), NewKey());
        await store.CreateAsync(SignedIn(sidA, "alice", new SessionSignIn(SignInTime, idp, "sid-a", "sub-alice")));
        await store.CreateAsync(SignedIn(sidA2, "alice", new SessionSignIn(SignInTime, idp, "sid-a2", "sub-alice")));
        await store.CreateAsync(SignedIn(sidB, "bob", new SessionSignIn(SignInTime, idp, "sid-b", "sub-bob")));
        await store.CreateAsync(SignedIn(otherIssuer, "alice", new SessionSignIn(SignInTime, "https://other.example", "sid-a", "sub-alice")));

        var bySid = await store.DeleteBySignInAsync(SessionSignInFilter.ProviderSession(idp, "sid-a"), null, 10);
        var bySubject = await store.DeleteBySignInAsync(SessionSignInFilter.ProviderSubject(idp, "sub-alice"), null, 10);

        var (oldStamp, newStamp, noStamp, kept, otherUser) = (NewKey(), NewKey(), NewKey(), NewKey(), NewKey());
        await store.CreateAsync(SignedIn(oldStamp, "carol", new SessionSignIn(SignInTime, CredentialStamp: "old")));
        await store.CreateAsync(SignedIn(newStamp, "carol", new SessionSignIn(SignInTime, CredentialStamp: "new")));
        await store.CreateAsync(SignedIn(noStamp, "carol", new SessionSignIn(SignInTime)));
        await store.CreateAsync(SignedIn(kept, "carol", new SessionSignIn(SignInTime, CredentialStamp: "old")));
        await store.CreateAsync(SignedIn(otherUser, "dave", new SessionSignIn(SignInTime, CredentialStamp: "old")));
        var byStamp = await store.DeleteBySignInAsync(SessionSignInFilter.CredentialStampOtherThan("carol", "new"), kept, 10);

        Assert.Multiple(async () =>
        {
            Assert.That(bySid.Select(r => r.Key), Is.EqualTo(new[] { sidA }));
            Assert.That(bySid[0].UserId, Is.EqualTo("alice"));
            Assert.That(bySubject.Select(r => r.Key), Is.EqualTo(new[] { sidA2 }));
            Assert.That(await store.LoadAsync(sidB), Is.Not.Null, "another sid and subject");
            Assert.That(await store.LoadAsync(otherIssuer), Is.Not.Null, "the same sid and subject at another issuer");
            Assert.That(byStamp.Select(r => r.Key), Is.EqualTo(new[] { oldStamp }));
            foreach (var survivor in new[] { newStamp, noStamp, kept, otherUser })
            {
                Assert.That(await store.LoadAsync(survivor), Is.Not.Null);
            }
        });
    }

    /// <summary>DeleteBySignIn deletes at most maxRows per call, and the caller's repeats reach every match.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task DeleteBySignIn_DeletesInBatches()
    {
        var store = await MigratedStoreAsync();
        for (var i = 0; i < 5; i++)
        {
            await store.CreateAsync(SignedIn(NewKey(), "alice", new SessionSignIn(SignInTime, "https://idp.example", Subject: "sub")));
        }

        var filter = SessionSignInFilter.ProviderSubject("https://idp.example", "sub");
        var first = await store.DeleteBySignInAsync(filter, null, 2);
        var second = await store.DeleteBySignInAsync(filter, null, 2);
        var third = await store.DeleteBySignInAsync(filter, null, 2);
        var none = await store.DeleteBySignInAsync(filter, null, 2);

        Assert.That(new[] { first.Count, second.Count, third.Count, none.Count }, Is.EqualTo(new[] { 2, 2, 1, 0 }));
    }

    /// <summary>
    /// A capped sign-in at the cap under EndLeastRecentlyUsed ends the least recently used of the user's other live sessions
    /// (returned), whether it creates or renews; another user's sessions and the renewed one are not counted.
    /// </summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CappedSignIn_EndsTheLeastRecentlyUsed()
    {
        var store = await MigratedStoreAsync();
        var limit = new SessionUserLimit(2, MaxSessionsBehavior.EndLeastRecentlyUsed);
        var oldest = NewKey();
        var newer = NewKey();
        await store.CreateAsync(SignedIn(oldest, "alice"));
        _time.Advance(TimeSpan.FromMinutes(1));
        await store.CreateAsync(SignedIn(newer, "alice"));
        await store.CreateAsync(SignedIn(NewKey(), "bob"));
        _time.Advance(TimeSpan.FromMinutes(1));
        await store.TouchAsync(oldest);   // now the most recently used: newer is the least

        var third = NewKey();
        var created = await store.CreateAsync(SignedIn(third, "alice", limit: limit));
        var anonymous = NewKey();
        await store.CreateAsync(Row(anonymous));
        var renewedKey = NewKey();
        var renewed = await store.RenewAsync(anonymous, 1, SignedIn(renewedKey, "alice", limit: limit));

        Assert.Multiple(async () =>
        {
            Assert.That(created.Displaced.Select(r => r.Key), Is.EqualTo(new[] { newer }));
            Assert.That(created.Displaced[0].UserId, Is.EqualTo("alice"));
            Assert.That(renewed.Status, Is.EqualTo(SessionUpdateStatus.Committed));
            Assert.That(renewed.Displaced.Select(r => r.Key), Is.EqualTo(new[] { oldest }), "the renewal keeps the cap too");
            Assert.That(await store.LoadAsync(third), Is.Not.Null);
            Assert.That(await store.LoadAsync(renewedKey), Is.Not.Null);
            Assert.That(await store.ListByUserAsync("alice", 10), Has.Count.EqualTo(2));
            Assert.That(await store.ListByUserAsync("bob", 10), Has.Count.EqualTo(1));
        });
    }

    /// <summary>
    /// At the cap under RefuseSignIn the sign-in throws <see cref="SessionLimitExceededException"/> and stores nothing: no new
    /// row, the renewed row still under its old key, no other session ended. A re-sign-in of a counted session is not over.
    /// </summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CappedSignIn_RefuseSignIn_StoresNothing()
    {
        var store = await MigratedStoreAsync();
        var limit = new SessionUserLimit(1, MaxSessionsBehavior.RefuseSignIn);
        var first = NewKey();
        await store.CreateAsync(SignedIn(first, "alice"));
        var anonymous = NewKey();
        await store.CreateAsync(Row(anonymous));

        var refusedCreate = NewKey();
        var createError = Assert.ThrowsAsync<SessionLimitExceededException>(() => store.CreateAsync(SignedIn(refusedCreate, "alice", limit: limit)));
        var refusedRenewal = NewKey();
        var renewError = Assert.ThrowsAsync<SessionLimitExceededException>(() => store.RenewAsync(anonymous, 1, SignedIn(refusedRenewal, "alice", limit: limit)));
        var again = NewKey();
        var reSignIn = await store.RenewAsync(first, 1, SignedIn(again, "alice", limit: limit));

        Assert.Multiple(async () =>
        {
            Assert.That(createError!.UserId, Is.EqualTo("alice"));
            Assert.That(createError.MaxSessions, Is.EqualTo(1));
            Assert.That(renewError, Is.Not.Null);
            Assert.That(await store.LoadAsync(refusedCreate), Is.Null);
            Assert.That(await store.LoadAsync(refusedRenewal), Is.Null);
            Assert.That(await store.LoadAsync(anonymous), Is.Not.Null, "the refused renewal left the session under its old key");
            Assert.That(reSignIn.Status, Is.EqualTo(SessionUpdateStatus.Committed), "the user's one session signing in again is within the cap");
            Assert.That(reSignIn.Displaced, Is.Empty);
        });
    }

    /// <summary>The user's expired sessions (not cleaned yet) do not count toward the cap and are not reported as displaced.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CappedSignIn_DoesNotCountExpiredSessions()
    {
        var store = await MigratedStoreAsync();
        await store.CreateAsync(SignedIn(NewKey(), "alice"));
        _time.Advance(TimeSpan.FromMinutes(30));   // past the 20-minute idle timeout

        var created = await store.CreateAsync(SignedIn(NewKey(), "alice", limit: new SessionUserLimit(1, MaxSessionsBehavior.RefuseSignIn)));

        Assert.That(created.Displaced, Is.Empty);
    }

    /// <summary>A capped renewal that misses (its row changed) ends no other session.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CappedRenewal_ThatConflicts_EndsNothing()
    {
        var store = await MigratedStoreAsync();
        var other = NewKey();
        await store.CreateAsync(SignedIn(other, "alice"));
        var anonymous = NewKey();
        await store.CreateAsync(Row(anonymous));
        await store.UpdateAsync(anonymous, [2], 1);

        var result = await store.RenewAsync(anonymous, 1, SignedIn(NewKey(), "alice", limit: new SessionUserLimit(1, MaxSessionsBehavior.EndLeastRecentlyUsed)));

        Assert.Multiple(async () =>
        {
            Assert.That(result.Status, Is.EqualTo(SessionUpdateStatus.Conflict));
            Assert.That(result.Displaced, Is.Empty);
            Assert.That(await store.LoadAsync(other), Is.Not.Null);
        });
    }

    /// <summary>
    /// 50 simultaneous sign-ins of one user, spread over three stores on the one database (three processes or servers),
    /// leave exactly the cap: with EndLeastRecentlyUsed every sign-in succeeds and the rest end; with RefuseSignIn exactly
    /// the cap succeed and the others throw, storing nothing.
    /// </summary>
    /// <param name="behavior">What the cap does.</param>
    /// <returns>A task that completes when the test has run.</returns>
    [TestCase(MaxSessionsBehavior.EndLeastRecentlyUsed)]
    [TestCase(MaxSessionsBehavior.RefuseSignIn)]
    public async Task FiftySimultaneousSignIns_FromThreeStores_LeaveExactlyTheCap(MaxSessionsBehavior behavior)
    {
        const int cap = 3;
        await MigratedStoreAsync();
        var stores = Enumerable.Range(0, 3).Select(_ => NewStore()).ToList();
        var limit = new SessionUserLimit(cap, behavior);
        var anonymous = new List<byte[]>();
        for (var i = 0; i < 50; i++)
        {
            var key = NewKey();
            anonymous.Add(key);
            await stores[i % 3].CreateAsync(Row(key));
        }

        using var start = new SemaphoreSlim(0);
        var signIns = anonymous.Select((key, i) => Task.Run(async () =>
        {
            await start.WaitAsync();
            return i % 2 == 0
                ? (await stores[i % 3].CreateAsync(SignedIn(NewKey(), "alice", limit: limit))).Displaced.Count
                : (await stores[i % 3].RenewAsync(key, 1, SignedIn(NewKey(), "alice", limit: limit))).Displaced.Count;
        })).ToList();
        start.Release(50);
        var outcomes = await Task.WhenAll(signIns.Select(async t =>
        {
            try
            {
                return (Ok: true, Displaced: await t);
            }
            catch (SessionLimitExceededException)
            {
                return (Ok: false, Displaced: 0);
            }
        }));

        var live = await stores[0].ListByUserAsync("alice", 100);
        Assert.Multiple(() =>
        {
            Assert.That(live, Has.Count.EqualTo(cap));
            Assert.That(outcomes.Count(o => o.Ok), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? cap : 50));
            Assert.That(outcomes.Sum(o => o.Displaced), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? 0 : 50 - cap), "each ended session reported once");
        });
    }
}
