using SessionMiddleware.Ids;
using SessionMiddleware.Cookies;
using SessionMiddleware.Session;

namespace SessionMiddleware.Tests;

/// <summary>A session's life as one value: what each transition keeps and what it leaves behind.</summary>
public sealed class SessionLifecycleTests
{
    private static readonly byte[] SecretId = SessionIds.NewSecretId(DateTimeOffset.UtcNow);

    private static SessionLifecycle Loaded(string? user = "alice") =>
        SessionLifecycle.Stored(SecretId, new StoredSession(SessionIds.ComputeKey(SecretId), [], 7, user, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch));

    [Test]
    public void Abandoned_WhileRenewing_EndsTheIdItHadBefore_AndStartsANewSessionWithNothingLeftOver()
    {
        var loaded = Loaded();
        var renewing = loaded.Regenerated(DateTimeOffset.UtcNow).BoundTo("bob");

        var abandoned = renewing.Abandoned();

        Assert.Multiple(() =>
        {
            Assert.That(renewing.RenewingFrom!.Key, Is.EqualTo(loaded.Key));
            Assert.That(renewing.Key, Is.Not.EqualTo(loaded.Key));
            Assert.That(abandoned.AbandonedKey, Is.EqualTo(loaded.Key), "the row stored under the old ID");
            Assert.That(abandoned.AbandonedUserId, Is.EqualTo("alice"), "the user of that row");
            Assert.That(abandoned.AbandonCommitted(), Is.EqualTo(SessionLifecycle.New), "nothing else survives");
        });
    }

    [Test]
    public void Abandoned_WhenFollowingARenewal_EndsOnlyTheIdThisRequestPresented()
    {
        var loaded = Loaded();
        var following = loaded.Following(SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow)));

        var abandoned = following.Abandoned();

        Assert.Multiple(() =>
        {
            Assert.That(following.FollowsRenewal, Is.True);
            Assert.That(following.SecretId, Is.SameAs(SecretId), "the new secret ID is not this request's to send");
            Assert.That(abandoned.AbandonedKey, Is.EqualTo(loaded.Key));
            Assert.That(abandoned.FollowsRenewal, Is.False);
        });
    }

    [Test]
    public void Abandoned_Twice_KeepsTheFirstRowToDelete_AndAGoneRowStaysGone()
    {
        var first = Loaded().Gone().Abandoned();
        var second = first.WithId(DateTimeOffset.UtcNow).Abandoned();

        Assert.Multiple(() =>
        {
            Assert.That(second.AbandonedKey, Is.EqualTo(Loaded().Key));
            Assert.That(second.IsGone, Is.True);
            Assert.That(second.IsNew, Is.True);
            Assert.That(second.SecretId, Is.Null);
        });
    }

    [Test]
    public void RenewalCancelled_RestoresTheOldId_AndRenewedForgetsIt()
    {
        var loaded = Loaded();
        var renewing = loaded.Regenerated(DateTimeOffset.UtcNow).Regenerated(DateTimeOffset.UtcNow);

        var cancelled = renewing.RenewalCancelled();
        var renewed = renewing.Renewed(8);

        Assert.Multiple(() =>
        {
            Assert.That(renewing.RenewingFrom!.Key, Is.EqualTo(loaded.Key), "the first renewal of the request is remembered");
            Assert.That(cancelled, Is.EqualTo(loaded));
            Assert.That(renewed.RenewingFrom, Is.Null);
            Assert.That(renewed.Key, Is.EqualTo(renewing.Key));
            Assert.That(renewed.Version, Is.EqualTo(8));
        });
    }

    [Test]
    public void Regenerated_OnANewSession_DropsItsId_AndCreatedStoresIt()
    {
        var withId = SessionLifecycle.New.WithId(DateTimeOffset.UtcNow);

        var regenerated = withId.Regenerated(DateTimeOffset.UtcNow);
        var created = regenerated.WithId(DateTimeOffset.UtcNow).Created(1);

        Assert.Multiple(() =>
        {
            Assert.That(withId.Key, Is.EqualTo(SessionIds.ComputeKey(withId.SecretId!)));
            Assert.That(regenerated, Is.EqualTo(SessionLifecycle.New), "a new session is not renewed: it gets a fresh ID when stored");
            Assert.That(created.IsNew, Is.False);
            Assert.That(created.Version, Is.EqualTo(1));
            Assert.That(created.RenewingFrom, Is.Null);
        });
    }
}
