using Microsoft.Data.Sqlite;
using SessionMiddleware.Storage;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// <see cref="SqlStatement"/>, which runs the stores' statements without Dapper (for Native AOT): parameters by name,
/// rows by column name, single values, cancellation, on a real SQLite file.
/// </summary>
public sealed class SqlStatementTests : TempFolderTest
{
    [Test]
    public async Task Statements_BindPropertiesByName_AndReadRowsByColumnName()
    {
        await using var connection = await OpenAsync();
        await connection.ExecuteAsync(SqlStatement.Of(
            "INSERT INTO t (id, user_id, n, idle) VALUES (@Id, @UserId, @N, @IdleSeconds);",
            new { Id = new byte[] { 1, 2 }, UserId = (string?)null, N = 7L, IdleSeconds = 60L }));

        var rows = await connection.QueryAsync<Row>(SqlStatement.Of(
            "SELECT id AS Id, user_id AS userid, n AS N, idle AS Idle FROM t WHERE n = @N;", new { N = 7 }));

        Assert.That(rows, Has.Count.EqualTo(1));
        Assert.That(rows[0].Id, Is.EqualTo(new byte[] { 1, 2 }));
        Assert.That(rows[0].UserId, Is.Null, "NULL read as null");
        Assert.That(rows[0].N, Is.EqualTo(7), "a 64-bit SQLite integer read into an int");
        Assert.That(rows[0].Idle, Is.EqualTo(60), "@IdleSeconds bound, not @Id's value");
    }

    [Test]
    public async Task Scalars_NoRowOrNull_AreTheDefault()
    {
        await using var connection = await OpenAsync();

        Assert.That(await connection.ExecuteScalarAsync<long?>(SqlStatement.Of("SELECT n FROM t WHERE n = 1;")), Is.Null);
        Assert.That(await connection.ExecuteScalarAsync<long>(SqlStatement.Of("SELECT NULL;")), Is.Zero);
        Assert.That(await connection.QuerySingleOrDefaultAsync<Row>(SqlStatement.Of("SELECT n AS N FROM t;")), Is.Null);
        Assert.That(await connection.QueryAsync<string>(SqlStatement.Of("SELECT 'a' UNION ALL SELECT 'b';")), Is.EqualTo(new[] { "a", "b" }));
    }

    [Test]
    public async Task ATupleRow_IsRefused_RatherThanReadAsDefaults()
    {
        await using var connection = await OpenAsync();

        Assert.ThrowsAsync<NotSupportedException>(() => connection.QueryAsync<(long A, long B)>(SqlStatement.Of("SELECT 1 AS A, 2 AS B;")));
    }

    [Test]
    public async Task ACancelledStatement_DoesNotRun()
    {
        await using var connection = await OpenAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        Assert.CatchAsync<OperationCanceledException>(() => connection.ExecuteAsync(SqlStatement.Of(
            "INSERT INTO t (n) VALUES (1);", cancellationToken: cancelled.Token)));

        Assert.That(await connection.ExecuteScalarAsync<long>(SqlStatement.Of("SELECT count(*) FROM t;")), Is.Zero);
    }

    [Test]
    public void Names_MatchesOnlyTheWholeParameterName()
    {
        Assert.That(SqlValues.Names("x = @IdleSeconds", "Id"), Is.False);
        Assert.That(SqlValues.Names("x = @Id_2", "Id"), Is.False);
        Assert.That(SqlValues.Names("x IN (@Id)", "Id"), Is.True);
        Assert.That(SqlValues.Names("x = @Id", "Id"), Is.True);
    }

    private async Task<SqliteConnection> OpenAsync()
    {
        var connection = new SqliteConnection($"Data Source={Folder.File("statements.db")}");
        await connection.OpenAsync();
        await connection.ExecuteAsync(SqlStatement.Of("CREATE TABLE IF NOT EXISTS t (id BLOB, user_id TEXT, n INTEGER, idle INTEGER);"));
        return connection;
    }

    private sealed class Row
    {
        public byte[] Id { get; set; } = [];

        public string? UserId { get; set; }

        public int N { get; set; }

        public long? Idle { get; set; }
    }
}
