using Microsoft.AspNetCore.Http.HttpResults;
using SessionMiddleware.Demo.Components;

/// <summary>
/// Serves a page the demo renders as text with the live element (<see cref="LiveStatus"/>, interactive over Blazor Server)
/// in the place the page marks with <see cref="LivePage.Placeholder"/>, and the framework's script that connects it.
/// </summary>
internal static class LiveElement
{
    // blazor.web.js is served by the framework (no npm). Enhanced navigation is off: the demo's links and forms are plain.
    private const string Script = """
        <script src="/_framework/blazor.web.js" autostart="false"></script>
        <script>Blazor.start({ ssr: { disableDomPreservation: true } });</script>

        """;

    /// <summary>The page, with the live element where it has <see cref="LivePage.Placeholder"/>.</summary>
    public static RazorComponentResult<LivePage> Page(string html)
    {
        var at = html.IndexOf(LivePage.Placeholder, StringComparison.Ordinal);
        if (at < 0)
        {
            throw new ArgumentException("The page has no place for the live element.", nameof(html));
        }

        var after = html[(at + LivePage.Placeholder.Length)..];
        var end = after.LastIndexOf("</body>", StringComparison.Ordinal);
        after = end < 0 ? after + Script : after[..end] + Script + after[end..];
        return new RazorComponentResult<LivePage>(new { Before = html[..at], After = after })
        {
            ContentType = "text/html; charset=utf-8",
        };
    }
}
