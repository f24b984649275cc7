using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

public sealed record Cart(string Owner, List<string> Items, int Quantity);

/// <summary>The shape <see cref="Cart"/> had in an earlier deployment: its quantity was text.</summary>
public sealed record CartBefore(string Owner, List<string> Items, string Quantity);

[JsonSerializable(typeof(Cart))]
[JsonSerializable(typeof(Dictionary<string, int>))]
internal sealed partial class TestJsonContext : JsonSerializerContext;

/// <summary>
/// Typed session values (<see cref="SessionJsonExtensions"/>): written in one request, read in the next through a real
/// host and store; a value whose type changed; the size limit; the source-generated overloads.
/// </summary>
public sealed class SessionJsonTests : TempFolderTest
{
    private const int UnreadableEventId = 2540;

    [Test]
    public async Task SetThenGet_InTheNextRequest_RoundTripsRecordsCollectionsAndNull()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
        {
            app.MapGet("/json/set", (HttpContext c) =>
            {
                c.Session.Set("cart", new Cart("alice", ["apple", "pear"], 3));
                c.Session.Set("carts", new List<Cart> { new("bob", [], 0), new("carol", ["fig"], 1) });
                c.Session.Set("counts", new Dictionary<string, int> { ["a"] = 1, ["b"] = 2 });
                c.Session.Set<Cart?>("nobody", null);
                return "ok";
            });
            app.MapGet("/json/get", (HttpContext c) =>
            {
                var found = c.Session.TryGet<Cart?>("nobody", out var nobody);
                return Results.Json(new
                {
                    Cart = c.Session.Get<Cart>("cart"),
                    Carts = c.Session.Get<List<Cart>>("carts"),
                    Counts = c.Session.Get<Dictionary<string, int>>("counts"),
                    NobodyFound = found,
                    NobodyIsNull = nobody is null && c.Session.Get<Cart>("nobody") is null,
                });
            });
        });
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/json/set");
        using var read = JsonDocument.Parse(await browser.GetTextAsync("/json/get"));

        var root = read.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("cart").Deserialize<Cart>(JsonSerializerOptions.Web) is { Owner: "alice", Quantity: 3 } cart
                && cart.Items.SequenceEqual(["apple", "pear"]), Is.True, root.GetProperty("cart").ToString());
            Assert.That(root.GetProperty("carts").GetArrayLength(), Is.EqualTo(2));
            Assert.That(root.GetProperty("carts")[1].GetProperty("items")[0].GetString(), Is.EqualTo("fig"));
            Assert.That(root.GetProperty("counts").GetProperty("b").GetInt32(), Is.EqualTo(2));
            Assert.That(root.GetProperty("nobodyFound").GetBoolean(), Is.True, "a stored null is a value");
            Assert.That(root.GetProperty("nobodyIsNull").GetBoolean(), Is.True);
        });
    }

    [Test]
    public async Task MissingKey_GetReturnsDefault_TryGetReturnsFalse_AndNothingIsLogged()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app => app.MapGet("/json/missing", (HttpContext c) =>
        {
            var found = c.Session.TryGet<Cart>("cart", out var cart);
            return $"{c.Session.Get<Cart>("cart") is null}|{c.Session.Get<int>("n")}|{c.Session.Get<int?>("n") is null}|{found}|{cart is null}";
        }));

        var text = await host.CreateBrowser().GetTextAsync("/json/missing");

        Assert.Multiple(() =>
        {
            Assert.That(text, Is.EqualTo("True|0|True|False|True"));
            Assert.That(host.Logs.GetSnapshot().Where(r => r.Id.Id == UnreadableEventId), Is.Empty);
        });
    }

    [Test]
    public async Task ValueOfAChangedType_GetThrowsNamingKeyAndType_TryGetReturnsFalseAndLogsAWarningWithoutTheValue()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: MapChangedTypeEndpoints);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/before/set");

        var thrown = await browser.GetTextAsync("/after/get");
        using var tried = await browser.GetAsync("/after/tryget");
        var tryText = await tried.Content.ReadAsStringAsync();
        var stillStored = await browser.GetTextAsync("/before/get");

        var warnings = host.Logs.GetSnapshot().Where(r => r.Id.Id == UnreadableEventId).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(thrown, Does.StartWith("InvalidOperationException/JsonException:"));
            Assert.That(thrown, Does.Contain("'cart'").And.Contain(typeof(Cart).FullName!));
            Assert.That(tried.StatusCode, Is.EqualTo(HttpStatusCode.OK), "TryGet never fails the request");
            Assert.That(tryText, Is.EqualTo("False|True"));
            Assert.That(stillStored, Is.EqualTo("three"), "neither read changes the stored value");
            Assert.That(warnings, Has.Count.EqualTo(1));
            Assert.That(warnings[0].Level, Is.EqualTo(LogLevel.Warning));
            Assert.That(warnings[0].Id.Name, Is.EqualTo("SessionValueUnreadable"));
            Assert.That(warnings[0].Message, Does.Contain("cart").And.Contain(typeof(Cart).FullName!).And.Contain("$.Quantity"));
            Assert.That(warnings[0].Message, Does.Not.Contain("three").And.Not.Contain("alice"), "never the value");
        });
    }

    private static void MapChangedTypeEndpoints(WebApplication app)
    {
        app.MapGet("/before/set", (HttpContext c) =>
        {
            c.Session.Set("cart", new CartBefore("alice", ["apple"], "three"));
            return "ok";
        });
        app.MapGet("/before/get", (HttpContext c) => c.Session.Get<CartBefore>("cart")!.Quantity);
        app.MapGet("/after/get", (HttpContext c) =>
        {
            try
            {
                return "read " + c.Session.Get<Cart>("cart");
            }
            catch (InvalidOperationException e)
            {
                return $"{e.GetType().Name}/{e.InnerException?.GetType().Name}: {e.Message}";
            }
        });
        app.MapGet("/after/tryget", (HttpContext c) => $"{c.Session.TryGet<Cart>("cart", out var cart)}|{cart is null}");
    }

    [Test]
    public async Task Set_PastMaxSessionBytes_ThrowsNamingTheLimit_AndStoresNothing()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.MaxSessionBytes = 1024, endpoints: app =>
        {
            app.MapGet("/json/big", (HttpContext c, int items) =>
            {
                try
                {
                    c.Session.Set("list", Enumerable.Range(0, items).Select(i => $"item-{i}").ToList());
                    return "stored";
                }
                catch (InvalidOperationException e)
                {
                    return e.Message;
                }
            });
            app.MapGet("/json/list", (HttpContext c) => c.Session.Get<List<string>>("list")?.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)");
        });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=other&value=1");

        var small = await browser.GetTextAsync("/json/big?items=10");
        var big = await browser.GetTextAsync("/json/big?items=200");
        var stored = await browser.GetTextAsync("/json/list");

        Assert.Multiple(() =>
        {
            Assert.That(small, Is.EqualTo("stored"));
            Assert.That(big, Does.Contain("MaxSessionBytes").And.Contain("1024"));
            Assert.That(stored, Is.EqualTo("10"), "the value before the refused Set stays");
        });
    }

    [Test]
    public async Task SourceGeneratedOverloads_RoundTrip_AndReadWhatTheReflectionOverloadsWrote()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
        {
            app.MapGet("/gen/set", (HttpContext c) =>
            {
                c.Session.Set("cart", new Cart("dave", ["kiwi"], 7), TestJsonContext.Default.Cart);
                c.Session.Set("counts", new Dictionary<string, int> { ["x"] = 9 });
                return "ok";
            });
            app.MapGet("/gen/get", (HttpContext c) =>
            {
                var cart = c.Session.Get("cart", TestJsonContext.Default.Cart)!;
                var found = c.Session.TryGet("counts", TestJsonContext.Default.DictionaryStringInt32, out var counts);
                var missing = c.Session.TryGet("none", TestJsonContext.Default.Cart, out _);
                return $"{cart.Owner}:{cart.Items[0]}:{cart.Quantity}|{found}:{counts!["x"]}|{missing}|{c.Session.Get<Cart>("cart")!.Quantity}";
            });
            app.MapGet("/gen/wrong", (HttpContext c) => $"{c.Session.TryGet("cart", TestJsonContext.Default.DictionaryStringInt32, out _)}");
        });
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/gen/set");
        var read = await browser.GetTextAsync("/gen/get");
        var wrong = await browser.GetTextAsync("/gen/wrong");

        Assert.Multiple(() =>
        {
            Assert.That(read, Is.EqualTo("dave:kiwi:7|True:9|False|7"));
            Assert.That(wrong, Is.EqualTo("False"));
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Id == UnreadableEventId), Is.EqualTo(1), "the source-generated TryGet logs too");
        });
    }

    [Test]
    public void TryGet_OnAnotherISession_ReturnsFalseForAnUnreadableValue_WithoutALogger()
    {
        var session = new DictionarySession();
        session.SetString("cart", "not json");

        Assert.Multiple(() =>
        {
            Assert.That(session.TryGet<Cart>("cart", out _), Is.False);
            var thrown = Assert.Throws<InvalidOperationException>(() => session.Get<Cart>("cart"));
            Assert.That(thrown!.InnerException, Is.InstanceOf<JsonException>());
        });
    }

    /// <summary>An <see cref="ISession"/> that is not this library's (as ASP.NET Core's own session would be).</summary>
    private sealed class DictionarySession : ISession
    {
        private readonly Dictionary<string, byte[]> _values = [];

        public bool IsAvailable => true;

        public string Id => "dictionary";

        public IEnumerable<string> Keys => _values.Keys;

        public void Clear() => _values.Clear();

        public Task CommitAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task LoadAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public void Remove(string key) => _values.Remove(key);

        public void Set(string key, byte[] value) => _values[key] = value;

        public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value) => _values.TryGetValue(key, out value);
    }
}
