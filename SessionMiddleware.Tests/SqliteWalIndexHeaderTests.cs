using System.Buffers.Binary;
using Microsoft.Data.Sqlite;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The row cache's watch over SQLite's WAL index header: it changes with every commit of any connection, stays put while
/// no one commits, is read only on a WAL file, and a header read half-written is no version.
/// </summary>
public sealed class SqliteWalIndexHeaderTests : TempFolderTest
{
    [Test]
    public async Task OnAWalFile_TheHeaderChangesWithEveryCommitOfAnotherConnection_AndOnlyThen()
    {
        var db = Folder.File("wal.db");
        await using var writer = await OpenAsync(db, "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);");
        await using var watch = await OpenAsync(db);

        var header = SqliteWalIndexHeader.TryOpen(watch);
        Assert.That(header, Is.Not.Null);
        var seen = new HashSet<long>();
        var version = header!.Read();
        for (var i = 0; i < 20; i++)
        {
            Assert.That(header.Read(), Is.EqualTo(version), "no commit, no change");
            Assert.That(seen.Add(version!.Value), Is.True, "a version seen before");
            await ExecuteAsync(writer, $"INSERT INTO t VALUES ({i});");
            var next = header.Read();
            Assert.That(next, Is.Not.EqualTo(version), $"commit {i}");
            version = next;
        }
    }

    [Test]
    public async Task OnARollbackJournalFile_ThereIsNoHeader_AndNoSharedMemoryFileIsCreated()
    {
        var db = Folder.File("delete.db");
        await using var connection = await OpenAsync(db, "PRAGMA journal_mode = DELETE; CREATE TABLE t (x INTEGER);");

        Assert.Multiple(() =>
        {
            Assert.That(SqliteWalIndexHeader.TryOpen(connection), Is.Null);
            Assert.That(File.Exists(db + "-shm"), Is.False);
        });
    }

    [Test]
    public async Task InMemory_ThereIsNoHeader()
    {
        await using var connection = new SqliteConnection("Data Source=:memory:");
        await connection.OpenAsync();

        Assert.That(SqliteWalIndexHeader.TryOpen(connection), Is.Null);
    }

    [Test]
    public void AHeaderWhoseTwoCopiesDiffer_OrNotInitialized_IsNoVersion()
    {
        var header = Header(change: 7, checksum: 99);

        Assert.Multiple(() =>
        {
            Assert.That(SqliteWalIndexHeader.VersionOf(header, header), Is.Not.Null);
            Assert.That(SqliteWalIndexHeader.VersionOf(header, Header(change: 8, checksum: 99)), Is.Null, "read while rewritten");
            var uninitialized = Header(change: 7, checksum: 99);
            uninitialized[12] = 0;
            Assert.That(SqliteWalIndexHeader.VersionOf(uninitialized, uninitialized), Is.Null);
        });
    }

    [Test]
    public void TheVersion_FollowsTheChangeCounterAndTheChecksum_AndIsNeverTheCachesUntrusted()
    {
        long? Version(uint change, uint checksum) => SqliteWalIndexHeader.VersionOf(Header(change, checksum), Header(change, checksum));

        Assert.Multiple(() =>
        {
            Assert.That(Version(7, 99), Is.Not.EqualTo(Version(8, 99)));
            Assert.That(Version(7, 99), Is.Not.EqualTo(Version(7, 100)));
            Assert.That(Version(uint.MaxValue, uint.MaxValue), Is.GreaterThanOrEqualTo(0));
        });
    }

    private static byte[] Header(uint change, uint checksum)
    {
        var header = new byte[48];
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), change);
        header[12] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(40), checksum);
        return header;
    }

    private static async Task<SqliteConnection> OpenAsync(string db, string? sql = null)
    {
        var connection = new SqliteConnection($"Data Source={db};Pooling=False");
        await connection.OpenAsync();
        if (sql is not null)
        {
            await ExecuteAsync(connection, sql);
        }

        return connection;
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
