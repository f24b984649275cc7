using Microsoft.Extensions.Configuration;

namespace SessionMiddleware.Tool;

/// <summary>
/// The app's settings as <c>WebApplication.CreateBuilder</c> reads them: the <c>DOTNET_</c> and <c>ASPNETCORE_</c>
/// prefixed environment variables, <c>appsettings.json</c>, <c>appsettings.{Environment}.json</c>, then the environment
/// variables (<c>Section__Key</c>), each overriding the ones before. The environment is <c>--environment</c>, else
/// <c>ASPNETCORE_ENVIRONMENT</c>, else <c>DOTNET_ENVIRONMENT</c>, else <c>Production</c>. User secrets and the app's
/// command line are not read.
/// </summary>
internal sealed class AppSettings
{
    /// <summary>Where an app that follows the README gives its connection string for <c>UsePostgreSql(...)</c>.</summary>
    public const string NamedConnectionKey = "ConnectionStrings:Sessions";

    private readonly IConfigurationRoot _root;
    private readonly string[] _describe; // one per provider, in _root.Providers order; {0} is the key as an environment variable
    private readonly string _optionsKey;
    private readonly string _environment;

    private AppSettings(IConfigurationRoot root, string[] describe, string folder, string sectionName, string environment, IReadOnlyList<string> sources)
    {
        _root = root;
        _describe = describe;
        Folder = folder;
        Section = root.GetSection(sectionName);
        _optionsKey = $"{sectionName}:{nameof(ServerSideSessionOptions.ConnectionString)}";
        _environment = environment;
        Sources = sources;
    }

    /// <summary>The folder of the settings file: a relative SQLite path in the settings is relative to it.</summary>
    public string Folder { get; }

    /// <summary>The options section (<c>ServerSideSessions</c> unless <c>--section</c> says otherwise).</summary>
    public IConfigurationSection Section { get; }

    /// <summary>The files read, and the environment variables, for <c>status</c>.</summary>
    public IReadOnlyList<string> Sources { get; }

    public static AppSettings Read(string file, string sectionName, string? environment)
    {
        var path = Path.GetFullPath(file);
        if (!File.Exists(path))
        {
            throw new UsageException($"no settings file at {path}");
        }

        var name = environment is { Length: > 0 } given ? given
            : Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT") is { Length: > 0 } aspnet ? aspnet
            : Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT") is { Length: > 0 } dotnet ? dotnet
            : "Production";
        var folder = Path.GetDirectoryName(path)!;
        var environmentFile = Path.Combine(folder, $"{Path.GetFileNameWithoutExtension(path)}.{name}.json");
        var root = new ConfigurationBuilder()
            .AddEnvironmentVariables("DOTNET_")
            .AddEnvironmentVariables("ASPNETCORE_")
            .AddJsonFile(path, optional: false)
            .AddJsonFile(environmentFile, optional: true)
            .AddEnvironmentVariables()
            .Build();
        string[] describe = ["the environment variable DOTNET_{0}", "the environment variable ASPNETCORE_{0}", path, environmentFile, "the environment variable {0}"];
        List<string> sources = [path];
        if (File.Exists(environmentFile))
        {
            sources.Add(environmentFile);
        }

        sources.Add("environment variables");
        return new AppSettings(root, describe, folder, sectionName, name, sources);
    }

    /// <summary>
    /// The connection string the app uses: the options' <c>ConnectionString</c> or <c>ConnectionStrings:Sessions</c>.
    /// When both are set they must agree (which one the app uses is in its code, not its settings); when neither is,
    /// the app would use the default <c>Data Source=sessions.db</c> relative to its working directory, which the tool
    /// does not guess.
    /// </summary>
    public string ConnectionString()
    {
        var fromOptions = Value(_optionsKey);
        var named = Value(NamedConnectionKey);
        if (fromOptions is not null && named is not null && !string.Equals(fromOptions.Value.Value, named.Value.Value, StringComparison.Ordinal))
        {
            throw new UsageException(
                $"the app's settings give two different connection strings, {_optionsKey} (in {fromOptions.Value.Source}) and " +
                $"{NamedConnectionKey} (in {named.Value.Source}), and which one the app uses is in its code: make them agree, " +
                "or give the database with --connection or --connection-env; nothing was changed");
        }

        return (fromOptions ?? named)?.Value ?? throw new UsageException(
            $"no connection string in the app's settings: looked for {_optionsKey} and {NamedConnectionKey} in " +
            $"{string.Join(", ", _describe[2..4])} (environment {_environment}) and in the environment variables " +
            $"{AsVariable(_optionsKey)} and {AsVariable(NamedConnectionKey)}; an app that keeps the default " +
            "'Data Source=sessions.db' names none: give the database with --connection or --connection-env; nothing was created");
    }

    private (string Value, string Source)? Value(string key)
    {
        var providers = _root.Providers.ToList();
        for (var i = providers.Count - 1; i >= 0; i--)
        {
            if (providers[i].TryGet(key, out var value))
            {
                return string.IsNullOrWhiteSpace(value)
                    ? null // an empty value in a later source blanks the key, as in the app
                    : (value, _describe[i].Replace("{0}", AsVariable(key), StringComparison.Ordinal));
            }
        }

        return null;
    }

    private static string AsVariable(string key) => key.Replace(":", "__", StringComparison.Ordinal);
}
