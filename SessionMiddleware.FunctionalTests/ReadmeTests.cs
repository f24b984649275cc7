using System.Text;
using System.Text.RegularExpressions;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Every C# block of README.md compiles as pasted into an app: each block becomes a file of one web project that
/// references the built library assemblies (no package download), and the project is built.
/// </summary>
public sealed partial class ReadmeTests : TempFolderTest
{
    // The assemblies an app gets from the two packages (and what their public API exposes).
    private static readonly string[] References = ["SessionMiddleware", "SessionMiddleware.PostgreSql", "SessionMiddleware.OpenIdConnect", "Npgsql"];

    [Test]
    public async Task ReadmeCSharpBlocks_AllCompile()
    {
        var blocks = CSharpBlocks(File.ReadAllText(Path.Combine(RepositoryPaths.Root(), "README.md")));
        Assert.That(blocks, Has.Count.GreaterThanOrEqualTo(5), "the README's C# blocks were found");

        var project = Folder.File("readme-snippets");
        Directory.CreateDirectory(project);
        File.WriteAllText(Path.Combine(project, "ReadmeSnippets.csproj"), ProjectFile());
        File.WriteAllText(Path.Combine(project, "Main.cs"), "internal static class Entry { private static void Main() { } }\n");
        for (var i = 0; i < blocks.Count; i++)
        {
            File.WriteAllText(Path.Combine(project, $"Snippet{i + 1:00}.cs"), SnippetFile(i + 1, blocks[i]));
        }

        TestContext.Out.WriteLine(string.Join("\n", blocks.Select((b, i) => $"Snippet{i + 1:00} (fence at README line {b.Line}): {b.Code.Split('\n')[0]}")));
        var (exitCode, output) = await ChildCommand.RunAsync("dotnet", project, TimeSpan.FromMinutes(5), "build", "-nologo", "-v", "q", "-clp:NoSummary");

        Assert.That(exitCode, Is.Zero, $"the README's C# blocks do not all compile (SnippetNN = the NNth block):\n{output}");
    }

    private sealed record Block(int Line, string Code);

    private static List<Block> CSharpBlocks(string readme)
    {
        var lines = readme.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var blocks = new List<Block>();
        for (var i = 0; i < lines.Length; i++)
        {
            var fence = FenceStart().Match(lines[i]);
            if (!fence.Success || fence.Groups["lang"].Value != "csharp")
            {
                continue;
            }

            var indent = fence.Groups["indent"].Value.Length;
            var code = new StringBuilder();
            var start = i + 1;
            for (i++; i < lines.Length && lines[i].Trim() != "```"; i++)
            {
                code.AppendLine(lines[i].Length >= indent ? lines[i][indent..] : lines[i].TrimStart());
            }

            blocks.Add(new Block(start, code.ToString()));
        }

        return blocks;
    }

    /// <summary>
    /// A block's <c>using</c> lines go to the top of its file, and its one-line type declarations (with the attribute lines
    /// just above them) after them; the rest becomes the body of a method, with the <c>builder</c> and <c>app</c> of a
    /// Program.cs in scope unless the block makes its own (a whole Program.cs).
    /// </summary>
    private static string SnippetFile(int number, Block block)
    {
        var usings = new StringBuilder();
        var types = new StringBuilder();
        var body = new StringBuilder();
        var attributes = new List<string>();
        foreach (var raw in block.Code.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (AttributeLine().IsMatch(line))
            {
                attributes.Add(line);
                continue;
            }

            var target = UsingLine().IsMatch(line) ? usings : TypeLine().IsMatch(line) ? types : body;
            attributes.ForEach(a => (target == types ? types : body).AppendLine(a));
            attributes.Clear();
            target.AppendLine(line);
        }

        var wholeProgram = block.Code.Contains("WebApplication.CreateBuilder", StringComparison.Ordinal);
        var parameters = wholeProgram ? "string[] args" : "WebApplicationBuilder builder, WebApplication app";
        return $$"""
            {{usings}}
            {{types}}
            internal static class Snippet{{number:00}}
            {
                internal static async Task RunAsync({{parameters}})
                {
            #line {{block.Line + 1}} "README.md"
            {{body}}
            #line default
                }
            }
            """;
    }

    private static string ProjectFile()
    {
        var bin = AppContext.BaseDirectory;
        var references = string.Concat(References.Select(r => $"""    <Reference Include="{r}"><HintPath>{Path.Combine(bin, r + ".dll")}</HintPath></Reference>{"\n"}"""));
        return $"""
            <Project Sdk="Microsoft.NET.Sdk.Web">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <OutputType>Exe</OutputType>
                <StartupObject>Entry</StartupObject>
                <!-- Pasted code: unused locals, async methods without await and the like are fine; errors are not. -->
                <TreatWarningsAsErrors>false</TreatWarningsAsErrors>
                <NoWarn>$(NoWarn);CS1998;CS0168;CS0219;CS8321;CS4014;CS1591</NoWarn>
              </PropertyGroup>
              <ItemGroup>
            {references}  </ItemGroup>
            </Project>
            """;
    }

    [GeneratedRegex(@"^(?<indent>\s*)```(?<lang>[A-Za-z#]*)\s*$")]
    private static partial Regex FenceStart();

    [GeneratedRegex(@"^using [A-Za-z0-9_.]+;\s*$")]
    private static partial Regex UsingLine();

    // A whole type on one line at the block's left edge: "public sealed record Cart(...);", "internal sealed partial class AppJson : ...;".
    [GeneratedRegex(@"^(public|internal)\s[^(]*\b(record|class|struct)\b.*;\s*(//.*)?$")]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^\[[A-Za-z][^\]]*\]\s*$")]
    private static partial Regex AttributeLine();
}
