namespace SessionMiddleware.Diagnostics;

/// <summary>
/// What the registered store says it is: OpenTelemetry's <c>db.system.name</c> for its metrics, spans and health check,
/// and the version of the session table schema it checks (the built-in stores). Registered with the store; a store
/// registered without one is <see cref="Unknown"/>.
/// </summary>
/// <param name="DbSystemName">The <c>db.system.name</c> value (<c>sqlite</c>, <c>postgresql</c>, …).</param>
/// <param name="SchemaVersion">The session table schema version the store checks, or <see langword="null"/> when it has none of ours.</param>
internal sealed record SessionStoreDescription(string DbSystemName, int? SchemaVersion)
{
    /// <summary>OpenTelemetry's value for a SQL database it has no name for.</summary>
    public const string OtherSql = "other_sql";

    /// <summary>A store that says nothing about itself.</summary>
    public static readonly SessionStoreDescription Unknown = new(OtherSql, null);
}
